//! What the `keten` binary and its end-to-end tests share: an mTLS client for a partner system
//! ([`client`]), a development PKI ([`pki`]), the OMPG demo scenario ([`scenario`]) and the plain-text plan a coordinator
//! reads ([`report`]).

// The allocator of everything that links this library: the `keten` binary, its tests, and
// `keten-bench`, which runs the server in its own process (declared here, once, so that the
// benchmark measures the allocator the server runs with). A server's calls allocate and free
// many small buffers across threads (HTTP/2 frames, protobuf messages, events, JSON); glibc's
// malloc spent about 10% of a 100-event Publish in `malloc` and `free` (BENCHMARKS.md, issue 5).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process; the first thing the `main` of every
/// binary that links this library does. mimalloc asks the kernel for huge pages for its arenas
/// (`madvise`), and then every 2 MiB an arena has touched is resident whole: in the end-to-end
/// test with 64 watchers that never read, the server's resident memory grew by 40 to 80 MiB
/// with them, 12 MiB without (glibc's malloc never asked for them). Not fatal where the kernel
/// refuses: memory is then only larger.
pub fn no_huge_pages() {
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!(
            "keten: could not turn transparent huge pages off ({e}); memory use may be larger"
        );
    }
}

pub mod client;
pub mod pki;
pub mod report;
pub mod scenario;
