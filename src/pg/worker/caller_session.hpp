/*
 * caller_session.hpp: how a run's worker becomes the caller's session.
 */
#pragma once

#include "pg/shmem/run_segment.hpp"

namespace pgguarantee {

/*
 * Connects as the caller (login role, database, libraries, settings, then the current role
 * and security context); for a resume by another role, drops the resumer's privileged
 * session settings first.
 */
void BecomeTheCaller(const RunShared *run, const RunSegment &segment);

}  // namespace pgguarantee
