/* downgrade.cpp: see downgrade.hpp. */
#include "core/downgrade.hpp"

namespace pgguarantee {

DowngradeBucket ClassifyLaunch(int planned, int launched) {
    if (planned <= 0 || launched >= planned) return DowngradeBucket::kNotDowngraded;
    if (launched <= 0) return DowngradeBucket::kSerial;
    /* Compared exactly: short / planned <= p / 100  <=>  100 * short <= p * planned. */
    int64_t shortfall = static_cast<int64_t>(planned) - launched;
    int64_t scaled = 100 * shortfall;
    if (scaled <= 25 * static_cast<int64_t>(planned)) return DowngradeBucket::kShort1To25;
    if (scaled <= 50 * static_cast<int64_t>(planned)) return DowngradeBucket::kShort25To50;
    if (scaled <= 75 * static_cast<int64_t>(planned)) return DowngradeBucket::kShort50To75;
    return DowngradeBucket::kShort75To99;
}

int ShortfallPercent(int planned, int launched) {
    if (planned <= 0 || launched >= planned) return 0;
    if (launched <= 0) return 100;
    int64_t shortfall = static_cast<int64_t>(planned) - launched;
    return static_cast<int>((100 * shortfall + planned - 1) / planned);
}

const char *DowngradeBucketName(DowngradeBucket bucket) {
    switch (bucket) {
        case DowngradeBucket::kNotDowngraded: return "not_downgraded";
        case DowngradeBucket::kShort1To25: return "short_1_25";
        case DowngradeBucket::kShort25To50: return "short_25_50";
        case DowngradeBucket::kShort50To75: return "short_50_75";
        case DowngradeBucket::kShort75To99: return "short_75_99";
        case DowngradeBucket::kSerial: return "serial";
    }
    return "unknown";
}

int64_t EntriesToEvict(int64_t entries) {
    int64_t n = entries / 20;
    return n < 1 ? 1 : n;
}

}  // namespace pgguarantee
