//! Compact binary encodings of log entries and log ids.
//!
//! Entries are on the hot path (payloads are ~100 KB protobuf), so they are a fixed header
//! followed by the raw payload; only the rare membership entries carry JSON.
//!
//! ```text
//! entry   = version:u8 kind:u8 term:u64le leader_node:u64le index:u64le body
//! body    = (normal) (len:u32le payload)* | (membership) JSON | (blank) nothing
//! log id  = term:u64le leader_node:u64le index:u64le
//! ```

use std::fmt;

use bytes::Bytes;
use openraft::{CommittedLeaderId, EntryPayload};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Entry, LogId};

const ENTRY_VERSION: u8 = 1;
const KIND_BLANK: u8 = 0;
const KIND_NORMAL: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;
/// Bytes before an entry's payload.
pub(crate) const ENTRY_HEADER_LEN: usize = 2 + LOG_ID_LEN;
/// Bytes of an encoded log id.
pub(crate) const LOG_ID_LEN: usize = 24;

/// The payload of a normal log entry: one or more proposals batched together, handed to the
/// [`Applier`](crate::Applier) one by one, in order.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AppData(pub(crate) Vec<Bytes>);

impl AppData {
    /// Bytes of the encoded entry body.
    pub(crate) fn encoded_len(&self) -> usize {
        self.0.iter().map(|p| 4 + p.len()).sum()
    }
}

impl fmt::Debug for AppData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppData({} payloads, {} bytes)", self.0.len(), self.encoded_len())
    }
}

/// Serializes as a sequence of byte strings (openraft needs serde; the log does not use it).
impl Serialize for AppData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Raw<'a>(&'a [u8]);
        impl Serialize for Raw<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        serializer.collect_seq(self.0.iter().map(|p| Raw(p)))
    }
}

impl<'de> Deserialize<'de> for AppData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Payload(Bytes);
        impl<'de> Deserialize<'de> for Payload {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_byte_buf(BytesVisitor).map(Payload)
            }
        }
        let payloads = Vec::<Payload>::deserialize(deserializer)?;
        Ok(AppData(payloads.into_iter().map(|p| p.0).collect()))
    }
}

struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Bytes;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }
    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(Bytes::from(v))
    }
}

/// A malformed encoding (a corrupt database or a bad peer).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CodecError(pub(crate) String);

impl CodecError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        CodecError(msg.into())
    }
}

/// Appends the encoding of `entry` to `out`.
pub(crate) fn encode_entry(entry: &Entry, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let (kind, payload_len) = match &entry.payload {
        EntryPayload::Blank => (KIND_BLANK, 0),
        EntryPayload::Normal(d) => (KIND_NORMAL, d.encoded_len()),
        EntryPayload::Membership(_) => (KIND_MEMBERSHIP, 0),
    };
    out.reserve(ENTRY_HEADER_LEN + payload_len);
    out.push(ENTRY_VERSION);
    out.push(kind);
    encode_log_id(&entry.log_id, out);
    match &entry.payload {
        EntryPayload::Blank => {}
        EntryPayload::Normal(d) => {
            for p in &d.0 {
                let len =
                    u32::try_from(p.len()).map_err(|_| CodecError::new("payload over 4 GiB"))?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(p);
            }
        }
        EntryPayload::Membership(m) => {
            serde_json::to_writer(&mut *out, m).map_err(|e| CodecError(e.to_string()))?
        }
    }
    Ok(())
}

/// Decodes an entry; a normal entry's payload shares `buf` (no copy).
pub(crate) fn decode_entry(buf: Bytes) -> Result<Entry, CodecError> {
    let log_id = entry_log_id(&buf)?;
    let payload = match buf[1] {
        KIND_BLANK => EntryPayload::Blank,
        KIND_NORMAL => EntryPayload::Normal(decode_payloads(&buf)?),
        KIND_MEMBERSHIP => EntryPayload::Membership(
            serde_json::from_slice(&buf[ENTRY_HEADER_LEN..])
                .map_err(|e| CodecError(format!("bad membership entry: {e}")))?,
        ),
        k => return Err(CodecError(format!("unknown log entry kind {k}"))),
    };
    Ok(Entry { log_id, payload })
}

/// Splits a normal entry's body into its payloads, sharing `buf`.
fn decode_payloads(buf: &Bytes) -> Result<AppData, CodecError> {
    let mut payloads = Vec::with_capacity(1);
    let mut at = ENTRY_HEADER_LEN;
    while at < buf.len() {
        let len = read_u32(buf, at)? as usize;
        at += 4;
        if buf.len() - at < len {
            return Err(CodecError::new("truncated payload"));
        }
        payloads.push(buf.slice(at..at + len));
        at += len;
    }
    Ok(AppData(payloads))
}

/// The log id of an encoded entry, without decoding its payload.
pub(crate) fn entry_log_id(buf: &[u8]) -> Result<LogId, CodecError> {
    if buf.len() < ENTRY_HEADER_LEN {
        return Err(CodecError(format!("log entry of {} bytes is too short", buf.len())));
    }
    if buf[0] != ENTRY_VERSION {
        return Err(CodecError(format!("unknown log entry version {}", buf[0])));
    }
    decode_log_id(&buf[2..ENTRY_HEADER_LEN])
}

/// Appends the 24-byte encoding of `id` to `out`.
pub(crate) fn encode_log_id(id: &LogId, out: &mut Vec<u8>) {
    out.extend_from_slice(&id.leader_id.term.to_le_bytes());
    out.extend_from_slice(&id.leader_id.node_id.to_le_bytes());
    out.extend_from_slice(&id.index.to_le_bytes());
}

/// Decodes a log id written by [`encode_log_id`].
pub(crate) fn decode_log_id(buf: &[u8]) -> Result<LogId, CodecError> {
    if buf.len() != LOG_ID_LEN {
        return Err(CodecError(format!("log id of {} bytes, want {LOG_ID_LEN}", buf.len())));
    }
    let term = read_u64(buf, 0)?;
    let node = read_u64(buf, 8)?;
    let index = read_u64(buf, 16)?;
    Ok(LogId::new(CommittedLeaderId::new(term, node), index))
}

/// Reads a little-endian u64 at `at`.
pub(crate) fn read_u64(buf: &[u8], at: usize) -> Result<u64, CodecError> {
    buf.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| CodecError::new("truncated integer"))
}

/// Reads a little-endian u32 at `at`.
pub(crate) fn read_u32(buf: &[u8], at: usize) -> Result<u32, CodecError> {
    buf.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| CodecError::new("truncated integer"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use openraft::Membership;

    use super::*;

    fn log_id(term: u64, node: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    fn round_trip(entry: Entry) {
        let mut buf = Vec::new();
        encode_entry(&entry, &mut buf).unwrap();
        let back = decode_entry(Bytes::from(buf)).unwrap();
        assert_eq!(back.log_id, entry.log_id);
        assert_eq!(back.payload, entry.payload);
    }

    #[test]
    fn entries_round_trip() {
        round_trip(Entry { log_id: log_id(3, 7, 42), payload: EntryPayload::Blank });
        round_trip(Entry {
            log_id: log_id(u64::MAX, 1, u64::MAX - 1),
            payload: EntryPayload::Normal(AppData(vec![Bytes::from(vec![7u8; 100_000])])),
        });
        round_trip(Entry {
            log_id: log_id(1, 2, 3),
            payload: EntryPayload::Normal(AppData(vec![Bytes::new()])),
        });
        round_trip(Entry {
            log_id: log_id(1, 2, 4),
            payload: EntryPayload::Normal(AppData(vec![
                Bytes::from_static(b"one"),
                Bytes::new(),
                Bytes::from_static(b"three"),
            ])),
        });
        let members: BTreeSet<u64> = [1, 2, 3].into();
        round_trip(Entry {
            log_id: log_id(1, 2, 3),
            payload: EntryPayload::Membership(Membership::new(vec![members], None)),
        });
    }

    #[test]
    fn normal_payload_is_not_copied() {
        let entry = Entry {
            log_id: log_id(1, 1, 1),
            payload: EntryPayload::Normal(AppData(vec![Bytes::from_static(b"hello")])),
        };
        let mut buf = Vec::new();
        encode_entry(&entry, &mut buf).unwrap();
        let buf = Bytes::from(buf);
        let EntryPayload::Normal(d) = decode_entry(buf.clone()).unwrap().payload else {
            panic!("not a normal entry");
        };
        assert_eq!(d.0[0].as_ptr(), buf[ENTRY_HEADER_LEN + 4..].as_ptr());
    }

    #[test]
    fn corrupt_entries_are_errors() {
        assert!(decode_entry(Bytes::from_static(b"")).is_err());
        assert!(decode_entry(Bytes::from(vec![9u8; ENTRY_HEADER_LEN])).is_err());
        let mut bad_kind = vec![ENTRY_VERSION, 77];
        bad_kind.extend_from_slice(&[0; LOG_ID_LEN]);
        assert!(decode_entry(Bytes::from(bad_kind)).is_err());
        let mut bad_membership = vec![ENTRY_VERSION, KIND_MEMBERSHIP];
        bad_membership.extend_from_slice(&[0; LOG_ID_LEN]);
        bad_membership.extend_from_slice(b"{");
        assert!(decode_entry(Bytes::from(bad_membership)).is_err());
        let mut short_payload = vec![ENTRY_VERSION, KIND_NORMAL];
        short_payload.extend_from_slice(&[0; LOG_ID_LEN]);
        short_payload.extend_from_slice(&[9, 0, 0, 0, b'x']);
        assert!(decode_entry(Bytes::from(short_payload)).is_err());
    }

    #[test]
    fn app_data_serde_round_trip() {
        let d = AppData(vec![Bytes::from_static(b"\x00\x01abc"), Bytes::new()]);
        let json = serde_json::to_string(&d).unwrap();
        let back: AppData = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }
}
