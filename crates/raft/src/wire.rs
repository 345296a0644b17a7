//! Encodings of the messages groups exchange through a [`Transport`](crate::Transport).
//!
//! Append-entries requests carry payloads, so their entries use the binary log codec; the small
//! rest of each message is JSON.
//!
//! ```text
//! append   = header_len:u32le header_json count:u32le (entry_len:u32le entry)*
//! snapshot = header_len:u32le header_json data
//! reply    = JSON of Result<response, RaftError>
//! ```

use bytes::Bytes;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest};
use openraft::{EmptyNode, SnapshotMeta, Vote};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{decode_entry, encode_entry, read_u32, CodecError};
use crate::{LogId, TypeConfig};

#[derive(Serialize, Deserialize)]
struct AppendHeader {
    vote: Vote<u64>,
    prev_log_id: Option<LogId>,
    leader_commit: Option<LogId>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotHeader {
    vote: Vote<u64>,
    meta: SnapshotMeta<u64, EmptyNode>,
    offset: u64,
    done: bool,
}

fn json_err(e: serde_json::Error) -> CodecError {
    CodecError(e.to_string())
}

fn len_u32(n: usize) -> Result<[u8; 4], CodecError> {
    u32::try_from(n).map(u32::to_le_bytes).map_err(|_| CodecError::new("message part over 4 GiB"))
}

/// Writes `header_len header_json` into a new buffer with room for `extra` more bytes.
fn with_header(header: &impl Serialize, extra: usize) -> Result<Vec<u8>, CodecError> {
    let json = serde_json::to_vec(header).map_err(json_err)?;
    let mut out = Vec::with_capacity(4 + json.len() + extra);
    out.extend_from_slice(&len_u32(json.len())?);
    out.extend_from_slice(&json);
    Ok(out)
}

/// Splits `header_len header_json rest` into the header and the offset of `rest`.
fn split_header<H: DeserializeOwned>(buf: &[u8]) -> Result<(H, usize), CodecError> {
    let len = read_u32(buf, 0)? as usize;
    let json = buf.get(4..4 + len).ok_or_else(|| CodecError::new("truncated message header"))?;
    Ok((serde_json::from_slice(json).map_err(json_err)?, 4 + len))
}

pub(crate) fn encode_append(req: &AppendEntriesRequest<TypeConfig>) -> Result<Bytes, CodecError> {
    let header = AppendHeader {
        vote: req.vote,
        prev_log_id: req.prev_log_id,
        leader_commit: req.leader_commit,
    };
    let payload_bytes: usize = req
        .entries
        .iter()
        .map(|e| match &e.payload {
            openraft::EntryPayload::Normal(d) => d.encoded_len() + 64,
            _ => 256,
        })
        .sum();
    let mut out = with_header(&header, 4 + payload_bytes)?;
    out.extend_from_slice(&len_u32(req.entries.len())?);
    for entry in &req.entries {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        encode_entry(entry, &mut out)?;
        let len = len_u32(out.len() - at - 4)?;
        out[at..at + 4].copy_from_slice(&len);
    }
    Ok(Bytes::from(out))
}

/// Decodes an append-entries request; payloads share `buf`.
pub(crate) fn decode_append(buf: Bytes) -> Result<AppendEntriesRequest<TypeConfig>, CodecError> {
    let (header, mut at): (AppendHeader, usize) = split_header(&buf)?;
    let count = read_u32(&buf, at)? as usize;
    at += 4;
    let mut entries = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let len = read_u32(&buf, at)? as usize;
        at += 4;
        if buf.len() < at + len {
            return Err(CodecError::new("truncated log entry"));
        }
        entries.push(decode_entry(buf.slice(at..at + len))?);
        at += len;
    }
    if at != buf.len() {
        return Err(CodecError::new("trailing bytes after log entries"));
    }
    Ok(AppendEntriesRequest {
        vote: header.vote,
        prev_log_id: header.prev_log_id,
        leader_commit: header.leader_commit,
        entries,
    })
}

pub(crate) fn encode_snapshot(
    req: &InstallSnapshotRequest<TypeConfig>,
) -> Result<Bytes, CodecError> {
    let header = SnapshotHeader {
        vote: req.vote,
        meta: req.meta.clone(),
        offset: req.offset,
        done: req.done,
    };
    let mut out = with_header(&header, req.data.len())?;
    out.extend_from_slice(&req.data);
    Ok(Bytes::from(out))
}

pub(crate) fn decode_snapshot(
    buf: &[u8],
) -> Result<InstallSnapshotRequest<TypeConfig>, CodecError> {
    let (h, at): (SnapshotHeader, usize) = split_header(buf)?;
    Ok(InstallSnapshotRequest {
        vote: h.vote,
        meta: h.meta,
        offset: h.offset,
        data: buf[at..].to_vec(),
        done: h.done,
    })
}

pub(crate) fn encode_json(v: &impl Serialize) -> Result<Bytes, CodecError> {
    serde_json::to_vec(v).map(Bytes::from).map_err(json_err)
}

pub(crate) fn decode_json<T: DeserializeOwned>(buf: &[u8]) -> Result<T, CodecError> {
    serde_json::from_slice(buf).map_err(json_err)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::codec::AppData;
    use crate::Entry;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    #[test]
    fn append_round_trip() {
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(2, 9)),
            leader_commit: Some(log_id(2, 8)),
            entries: vec![
                Entry { log_id: log_id(3, 10), payload: EntryPayload::Blank },
                Entry {
                    log_id: log_id(3, 11),
                    payload: EntryPayload::Normal(AppData(vec![Bytes::from(vec![5u8; 1000])])),
                },
            ],
        };
        let buf = encode_append(&req).unwrap();
        let back = decode_append(buf.clone()).unwrap();
        assert_eq!(back.vote, req.vote);
        assert_eq!(back.prev_log_id, req.prev_log_id);
        assert_eq!(back.leader_commit, req.leader_commit);
        assert_eq!(back.entries.len(), 2);
        assert_eq!(back.entries[1].payload, req.entries[1].payload);
        for cut in [0, 3, 10, buf.len() - 1] {
            assert!(decode_append(buf.slice(..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn empty_append_round_trip() {
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new(1, 2),
            prev_log_id: None,
            leader_commit: None,
            entries: vec![],
        };
        let back = decode_append(encode_append(&req).unwrap()).unwrap();
        assert!(back.entries.is_empty());
        assert_eq!(back.vote, req.vote);
    }

    #[test]
    fn snapshot_round_trip() {
        let req = InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            meta: SnapshotMeta {
                last_log_id: Some(log_id(3, 40)),
                last_membership: Default::default(),
                snapshot_id: "3-1-40-0".to_string(),
            },
            offset: 1024,
            data: b"state".to_vec(),
            done: true,
        };
        let back = decode_snapshot(&encode_snapshot(&req).unwrap()).unwrap();
        assert_eq!(back.meta, req.meta);
        assert_eq!(back.data, req.data);
        assert_eq!((back.offset, back.done), (1024, true));
    }
}
