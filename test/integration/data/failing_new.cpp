// failing_new.cpp: a test shim for walls.sh, preloaded (LD_PRELOAD) into a private test
// server.  While the file named by FAILING_NEW_FLAG exists, every C++ operator new in the
// server's processes throws std::bad_alloc, as it would when memory runs out.  PostgreSQL
// itself is C and never calls it; only the extension's C++ does, so this checks that the
// extension turns the exception into an ERROR instead of letting it unwind through
// PostgreSQL's frames (which crashes the server).  Never used outside that test.
#include <cstdlib>
#include <new>
#include <unistd.h>

namespace {
bool Failing() {
    const char *flag = std::getenv("FAILING_NEW_FLAG");
    return flag != nullptr && access(flag, F_OK) == 0;
}
void *Allocate(std::size_t size) {
    if (Failing()) throw std::bad_alloc();
    void *p = std::malloc(size == 0 ? 1 : size);
    if (p == nullptr) throw std::bad_alloc();
    return p;
}
}  // namespace

void *operator new(std::size_t size) { return Allocate(size); }
void *operator new[](std::size_t size) { return Allocate(size); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }
