//! Generates the protobuf and gRPC code with a pure-Rust compiler (protox): no protoc needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with `env!`: a build script compiled in another
    // checkout of the same workspace (sharing a target folder) must not read that one.
    let root = format!("{}/../../proto", std::env::var("CARGO_MANIFEST_DIR")?);
    let files = [
        "prometheus/remote.proto",
        "io/prometheus/write/v2/types.proto",
        "strata/raft/v1/raft.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={root}/{f}");
    }
    let fds = protox::compile(files, [&root])?;
    tonic_prost_build::configure()
        .bytes(".prometheus.Label")
        .bytes(".io.prometheus.write.v2.Request.symbols")
        .bytes(".strata.raft.v1.SeriesSamples.labels")
        .bytes(".strata.raft.v1.RaftCall.body")
        .bytes(".strata.raft.v1.RaftReply.body")
        .compile_fds(fds)?;
    Ok(())
}
