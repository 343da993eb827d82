//! The test servers' default ports (scripts/*.sh) never overlap: a server that binds a port
//! another one uses, or that FTP may hand out for a passive transfer, fails at random in CI.
//! Each script's footprint is written here; a script with a port default not listed fails.

use std::collections::BTreeMap;
use std::fs;
use std::ops::RangeInclusive;

/// (script, variable holding its base port, ports used as offsets from it).
const FOOTPRINTS: &[(&str, &str, RangeInclusive<u32>)] = &[
    // S3 API, RPC (+1), admin (+3).
    ("s3-server.sh", "GARAGE_PORT", 0..=3),
    ("s3-tls.sh", "S3_TLS_PORT", 0..=0),
    // Three nodes, 10 apart, each with S3, RPC and admin.
    ("s3-cluster.sh", "S3_CLUSTER_PORT", 0..=23),
    // Control port, then the passive range: range(port + 1, port + 200).
    ("ftp-server.sh", "FTP_PORT", 0..=199),
    ("sftp-server.sh", "SFTP_PORT", 0..=0),
    // The shared instance, then the web identity test's own (MOTO_STS_PORT, port + 1).
    ("moto-server.sh", "MOTO_PORT", 0..=1),
    ("rclone-s3.sh", "RCLONE_S3_PORT", 0..=0),
];

/// Every `${NAME_PORT:-1234}` default in `text`, as (NAME_PORT, 1234).
fn port_defaults(text: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("_PORT:-") {
        let start =
            text[..i].rfind(|c: char| !(c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())).map_or(0, |p| p + 1);
        let digits: String = text[i + 7..].chars().take_while(char::is_ascii_digit).collect();
        if let Ok(port) = digits.parse() {
            out.push((format!("{}_PORT", &text[start..i]), port));
        }
    }
    out
}

#[test]
fn test_servers_ports_do_not_overlap() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    let ftp = fs::read_to_string(format!("{dir}/ftp-server.sh")).unwrap();
    assert!(
        ftp.contains("range($((port + 1)), $((port + 200)))"),
        "ftp-server.sh's passive range changed: update its footprint here"
    );
    let mut used: BTreeMap<u32, String> = BTreeMap::new();
    let mut seen = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".sh") {
            continue;
        }
        for (var, base) in port_defaults(&fs::read_to_string(&path).unwrap()) {
            let Some((_, _, span)) = FOOTPRINTS.iter().find(|(s, v, _)| *s == name && *v == var) else {
                // A script may read another's port (s3-tls.sh reads GARAGE_PORT for its backend).
                assert!(
                    FOOTPRINTS.iter().any(|(_, v, _)| *v == var),
                    "{name}: {var} has no footprint in tests/ports.rs"
                );
                continue;
            };
            seen += 1;
            for off in span.clone() {
                if let Some(other) = used.insert(base + off, format!("{name} ({var})")) {
                    panic!("port {} is used by both {other} and {name} ({var})", base + off);
                }
            }
        }
    }
    assert_eq!(seen, FOOTPRINTS.len(), "a script listed in tests/ports.rs has no port default any more");
}

#[test]
fn port_defaults_are_read_with_their_variable() {
    let got = port_defaults("port=${FTP_PORT:-39021}\nb=${S3_ENDPOINT:-127.0.0.1:${GARAGE_PORT:-39000}}");
    assert_eq!(got, [("FTP_PORT".to_string(), 39021), ("GARAGE_PORT".to_string(), 39000)]);
}
