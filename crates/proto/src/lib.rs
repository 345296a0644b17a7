//! Generated protobuf types: remote-write 1.0 (`prometheus`), remote-write 2.0
//! (`io.prometheus.write.v2`) and Strata's own Raft log payloads (`strata.raft.v1`).
//! Generated code only; the `.proto` sources live in the workspace's `proto/` folder.
#![allow(clippy::all, clippy::clone_on_ref_ptr, missing_docs)]

pub mod prometheus {
    include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
}

pub mod write_v2 {
    include!(concat!(env!("OUT_DIR"), "/io.prometheus.write.v2.rs"));
}

pub mod raft_v1 {
    include!(concat!(env!("OUT_DIR"), "/strata.raft.v1.rs"));
}
