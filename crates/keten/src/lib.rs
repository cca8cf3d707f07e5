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

pub mod client;
pub mod pki;
pub mod report;
pub mod scenario;
