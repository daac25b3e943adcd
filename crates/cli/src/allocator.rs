//! The program's memory allocator when it carries the distribution: jemalloc, so memory
//! freed after a burst goes back to the system.
//!
//! Each password check allocates its argon2 memory (19 MiB at the default cost) and frees
//! it when done. Under glibc's malloc the first such free raises the threshold under which
//! blocks come from the heap instead of their own mapping (up to 32 MiB), so every later
//! check's 19 MiB came from the hashing thread's arena and stayed there once freed: a
//! login flood left the server ~150 MB larger for good (`scripts/bench-login-flood`). In
//! jemalloc, allocations over 8 MiB (`oversize_threshold`) live in their own arena that
//! gives pages back as soon as they are freed, and the rest of a burst's memory decays
//! back within seconds (`dirty_decay_ms`, 10 s); no setting is changed from its default.
//!
//! Only the program: the libraries leave the choice to whoever links them, and an updater
//! built alone (`--no-default-features --features updater`) keeps the system allocator.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
