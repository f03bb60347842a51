/* Catch2 tests of the downgrade buckets (src/core/downgrade.hpp). */
#include <catch2/catch.hpp>

#include <string>

#include "core/downgrade.hpp"

using namespace pgguarantee;

TEST_CASE("ClassifyLaunch: every planned worker launched is not a downgrade", "[downgrade]") {
    CHECK(ClassifyLaunch(4, 4) == DowngradeBucket::kNotDowngraded);
    CHECK(ClassifyLaunch(1, 1) == DowngradeBucket::kNotDowngraded);
    CHECK(ClassifyLaunch(4, 5) == DowngradeBucket::kNotDowngraded);
    CHECK(ClassifyLaunch(0, 0) == DowngradeBucket::kNotDowngraded);
}

TEST_CASE("ClassifyLaunch: no worker launched is serial", "[downgrade]") {
    CHECK(ClassifyLaunch(4, 0) == DowngradeBucket::kSerial);
    CHECK(ClassifyLaunch(1, 0) == DowngradeBucket::kSerial);
    CHECK(ClassifyLaunch(1024, 0) == DowngradeBucket::kSerial);
}

TEST_CASE("ClassifyLaunch: the bucket edges are inclusive above", "[downgrade]") {
    CHECK(ClassifyLaunch(4, 3) == DowngradeBucket::kShort1To25);    /* 25 % */
    CHECK(ClassifyLaunch(8, 7) == DowngradeBucket::kShort1To25);    /* 12.5 % */
    CHECK(ClassifyLaunch(3, 2) == DowngradeBucket::kShort25To50);   /* 33.3 % */
    CHECK(ClassifyLaunch(4, 2) == DowngradeBucket::kShort25To50);   /* 50 % */
    CHECK(ClassifyLaunch(3, 1) == DowngradeBucket::kShort50To75);   /* 66.7 % */
    CHECK(ClassifyLaunch(4, 1) == DowngradeBucket::kShort50To75);   /* 75 % */
    CHECK(ClassifyLaunch(8, 1) == DowngradeBucket::kShort75To99);   /* 87.5 % */
    CHECK(ClassifyLaunch(100, 1) == DowngradeBucket::kShort75To99); /* 99 % */
    CHECK(ClassifyLaunch(100, 74) == DowngradeBucket::kShort25To50); /* 26 % */
    CHECK(ClassifyLaunch(100, 75) == DowngradeBucket::kShort1To25);  /* 25 % */
}

TEST_CASE("ShortfallPercent: whole per cent, rounded up", "[downgrade]") {
    CHECK(ShortfallPercent(4, 4) == 0);
    CHECK(ShortfallPercent(4, 0) == 100);
    CHECK(ShortfallPercent(4, 3) == 25);
    CHECK(ShortfallPercent(3, 2) == 34);
    CHECK(ShortfallPercent(3, 1) == 67);
    CHECK(ShortfallPercent(100, 99) == 1);
    CHECK(ShortfallPercent(1000, 999) == 1);
    CHECK(ShortfallPercent(1024, 1) == 100);
}

TEST_CASE("DowngradeBucketName: the view's column names", "[downgrade]") {
    CHECK(std::string(DowngradeBucketName(DowngradeBucket::kNotDowngraded)) == "not_downgraded");
    CHECK(std::string(DowngradeBucketName(DowngradeBucket::kShort75To99)) == "short_75_99");
    CHECK(std::string(DowngradeBucketName(DowngradeBucket::kSerial)) == "serial");
}

TEST_CASE("EntriesToEvict: 5 per cent of a full table, at least one", "[downgrade]") {
    CHECK(EntriesToEvict(0) == 1);
    CHECK(EntriesToEvict(10) == 1);
    CHECK(EntriesToEvict(100) == 5);
    CHECK(EntriesToEvict(1000) == 50);
}
