/*
 * downgrade.hpp: how far short of its plan a parallel launch fell (pure C++, no PostgreSQL
 * header): the buckets of the server-wide downgrade statistics (parallel_guarantee_downgrades).
 */
#pragma once

#include <cstdint>

namespace pgguarantee {

/* How far a launch fell short of the workers its Gather planned. */
enum class DowngradeBucket {
    kNotDowngraded = 0,  /* launched every planned worker */
    kShort1To25,         /* short by more than 0 % and at most 25 % */
    kShort25To50,        /* more than 25 %, at most 50 % */
    kShort50To75,        /* more than 50 %, at most 75 % */
    kShort75To99,        /* more than 75 %, at least one worker launched */
    kSerial,             /* no worker launched: the leader ran it alone */
};
constexpr int kDowngradeBuckets = 6;

/* The bucket of a launch of `launched` workers out of `planned` (planned > 0). */
DowngradeBucket ClassifyLaunch(int planned, int launched);

/* The shortfall in whole per cent, rounded up (0 when nothing is missing; 100 serial). */
int ShortfallPercent(int planned, int launched);

/* The column names of the buckets, in order (for the view and the metrics). */
const char *DowngradeBucketName(DowngradeBucket bucket);

/*
 * How many of the least-used entries to evict when the table of `entries` entries is full:
 * 5 % of them, at least one.
 */
int64_t EntriesToEvict(int64_t entries);

}  // namespace pgguarantee
