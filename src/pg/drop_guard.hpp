/*
 * drop_guard.hpp: DROP EXTENSION parallel_guarantee is refused while runs of the database
 * are in progress (their workers would go on writing into tables that are gone).
 */
#pragma once

namespace pgguarantee {

void InstallDropGuard();

}  // namespace pgguarantee
