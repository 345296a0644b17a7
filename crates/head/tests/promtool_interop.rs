//! Checks our XOR chunks byte for byte against the chunks Prometheus itself writes:
//! `promtool tsdb create-blocks-from openmetrics` builds a block from the same samples.
//! Skipped when `promtool` is not on PATH, unless `STRATA_REQUIRE_INTEROP=1`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_head::chunk::{XorChunk, XorIter};

/// Go's `math.NaN()`, which is what Prometheus parses "NaN" into.
const GO_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

fn samples() -> Vec<(i64, f64)> {
    // Timestamps are multiples of 125 ms so their decimal seconds parse exactly, and stay
    // inside one 2h block. The gaps cover every delta-of-delta bucket.
    let deltas = [
        15_000, 15_000, 15_000, 14_875, 15_125, 30_000, 500, 60_000, 600_000, 125, 1_000_000,
        15_000, 15_000,
    ];
    let values = [
        1.0,
        1.0,
        2.0,
        3.0,
        -0.0,
        0.0,
        1e300,
        f64::MIN_POSITIVE,
        f64::from_bits(GO_NAN_BITS),
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.1,
        12345.678,
        -7.25,
    ];
    let mut t = 1_000i64;
    let mut out = vec![(t, values[0])];
    for (d, v) in deltas.iter().zip(&values[1..]) {
        t += d;
        out.push((t, *v));
    }
    out
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

fn find_chunk_file(dir: &Path) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let p = entry.ok()?.path();
        let c = p.join("chunks").join("000001");
        if c.exists() {
            return Some(c);
        }
    }
    None
}

fn read_uvarint(b: &[u8], pos: &mut usize) -> u64 {
    let mut x = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*pos];
        *pos += 1;
        x |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return x;
        }
        shift += 7;
    }
}

#[test]
fn chunks_match_prometheus() {
    let required = std::env::var("STRATA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    let dir = std::env::temp_dir().join(format!("strata-head-promtool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.om");
    let mut text = String::from("# TYPE m gauge\n");
    for (t, v) in samples() {
        text.push_str(&format!("m {} {}.{:03}\n", format_value(v), t / 1000, t % 1000));
    }
    text.push_str("# EOF\n");
    std::fs::write(&input, text).unwrap();

    let out_dir = dir.join("out");
    let run = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&out_dir)
        .output();
    let output = match run {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            println!("skipped: promtool not found on PATH");
            return;
        }
        Err(e) => panic!("running promtool: {e}"),
    };
    assert!(
        output.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let file = std::fs::read(find_chunk_file(&out_dir).expect("a block with chunks")).unwrap();
    // Segment header: magic, version, padding; then uvarint length, encoding (1 = XOR), data, CRC.
    assert_eq!(&file[..4], &[0x85, 0xbd, 0x40, 0xdd]);
    let mut pos = 8;
    let len = read_uvarint(&file, &mut pos) as usize;
    assert_eq!(file[pos], 1, "XOR encoding");
    let theirs = &file[pos + 1..pos + 1 + len];
    assert_eq!(file.len(), pos + 1 + len + 4, "exactly one chunk");

    let mut ours = XorChunk::new();
    for (t, v) in samples() {
        ours.append(t, v).unwrap();
    }
    assert_eq!(ours.bytes(), theirs);
    let decoded: Vec<(i64, u64)> = XorIter::new(theirs).map(|(t, v)| (t, v.to_bits())).collect();
    let want: Vec<(i64, u64)> = samples().into_iter().map(|(t, v)| (t, v.to_bits())).collect();
    assert_eq!(decoded, want);
    let _ = std::fs::remove_dir_all(&dir);
}
