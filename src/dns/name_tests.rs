//! Tests of [`super`]: lowercasing, hashing and comparing names, the canonical order.

use super::*;

#[test]
fn eq_fold_is_ascii_case_insensitive_equality() {
    // Every byte beside every byte, in strings of every length to 40 (the byte in each
    // position): the fold by words and by 16-byte blocks agrees with the standard
    // library's.
    let mut seed = 7u64;
    for len in 0..40usize {
        for _ in 0..400 {
            let a: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 56) as u8
                })
                .collect();
            let mut b = a.clone();
            if len > 0 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let at = (seed >> 40) as usize % len;
                b[at] = (seed >> 24) as u8;
                if seed & 1 == 0 {
                    b[at] = a[at] ^ 0x20;
                }
            }
            assert_eq!(eq_fold(&a, &b), a.eq_ignore_ascii_case(&b), "{a:?} {b:?}");
            let upper = a.to_ascii_uppercase();
            assert!(eq_fold(&a, &upper));
        }
    }
    assert!(!eq_fold(b"abc", b"abcd"));
}

#[test]
fn owner_fast_path_matches_the_general_way() {
    let origin: Name = "Example.COM.".parse().unwrap();
    let origin_wire = wire_lower(&origin);
    let long_label = "a".repeat(63);
    let too_long_label = "a".repeat(64);
    let near_max = format!("{l}.{l}.{l}.{m}", l = long_label, m = "b".repeat(49));
    let over_max = format!("{l}.{l}.{l}.{m}", l = long_label, m = "b".repeat(50));
    let cases = [
        "@",
        "www",
        "WWW",
        "a.b.c",
        "Mail.Example.COM.",
        "x.",
        ".",
        "a..b",
        ".a",
        r"a\.b",
        r"\065bc",
        "ünï",
        "*",
        "*.wild",
        "_sip._tcp",
        &long_label,
        &too_long_label,
        &near_max,
        &over_max,
        "trailing.dot.",
        "a\\",
        "",
    ];
    for text in cases {
        let general = from_text(text, &origin).map(|n| wire_lower(&n));
        let mut out = [0u8; MAX_NAME_LEN];
        match owner_to_wire_lower(text, &origin_wire, &mut out) {
            // Taken: exactly the general way's bytes.
            Some(n) => assert_eq!(Ok(out[..n].to_vec()), general, "{text:?}"),
            // Declined: only what the general way must word (an escape, an error, the root,
            // the empty name).
            None => assert!(
                text.contains('\\') || general.is_err() || text == "." || text.is_empty(),
                "{text:?} declined but fine: {general:?}"
            ),
        }
    }
}

#[test]
fn lower_into_matches_std_for_every_byte() {
    // Every byte value in every position of a 16-byte block, an 8-byte word and a tail.
    for len in [1usize, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 255] {
        for b in 0..=255u8 {
            let src: Vec<u8> = (0..len)
                .map(|i| b.wrapping_add((i as u8).wrapping_mul(37)))
                .collect();
            let mut dst = name_buf();
            let got = lower_into(&src, &mut dst);
            assert_eq!(got, &src.to_ascii_lowercase()[..], "len {len} byte {b}");
        }
    }
    let mut dst = name_buf();
    assert_eq!(
        lower_into(b"\x03WwW\x07ExAmPlE\x03CoM\x00", &mut dst),
        b"\x03www\x07example\x03com\x00"
    );
    assert_eq!(lower_into(&[0u8; 300], &mut dst).len(), MAX_NAME_LEN);
}

#[test]
fn same_bytes_is_slice_equality() {
    let names: Vec<Vec<u8>> = (0..40usize)
        .map(|len| (0..len).map(|i| (i * 7 + len) as u8).collect())
        .collect();
    for a in &names {
        assert!(same_bytes(a, a));
        for b in &names {
            assert_eq!(same_bytes(a, b), a == b);
        }
        // One byte changed anywhere, the tail words included.
        for i in 0..a.len() {
            let mut c = a.clone();
            c[i] ^= 1;
            assert!(!same_bytes(a, &c), "len {} byte {i}", a.len());
        }
    }
}

#[test]
fn the_hash_is_blind_to_case_alone() {
    // Every length to 64 (short names, whole words, a tail word that overlaps), letters
    // in both cases: the hash of the lowercase name. Any byte changed: another hash.
    for len in 1..=64usize {
        let lower: Vec<u8> = (0..len).map(|i| b"abcxyz-09"[i % 9]).collect();
        let mixed: Vec<u8> = lower
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if i % 3 != 1 {
                    b.to_ascii_uppercase()
                } else {
                    b
                }
            })
            .collect();
        assert_eq!(name_hash(&mixed), name_hash(&lower), "length {len}");
        // Every byte counts, whichever words cover it.
        for at in 0..len {
            let mut other = lower.clone();
            other[at] ^= 0x40;
            assert_ne!(
                name_hash(&other),
                name_hash(&lower),
                "length {len}, byte {at}"
            );
        }
    }
}

#[test]
fn the_hash_made_while_lowercasing_is_the_hash_of_the_lowercase_name() {
    let names: [&[u8]; 6] = [
        b"\x00",
        b"\x01A\x00",
        b"\x03WwW\x00",
        b"\x03WwW\x07ExAmPlE\x03CoM\x00",
        b"\x08ABCDEFGH\x00",
        &[0x3f; 255],
    ];
    let mut dst = name_buf();
    let mut seen = std::collections::HashSet::new();
    for name in names {
        let (lower, hash) = lower_hash_into(name, &mut dst);
        assert_eq!(lower, &name.to_ascii_lowercase()[..]);
        assert_eq!(hash, name_hash(&name.to_ascii_lowercase()), "{name:?}");
        assert!(seen.insert(hash), "two of the names share a hash");
    }
    // Names that differ in one byte anywhere (the tail word overlaps) hash apart, and
    // the length counts: a name and the same bytes with a zero after them differ.
    let base = b"\x05hello\x05world\x03xyz\x00".to_vec();
    let mut hashes = std::collections::HashSet::new();
    for i in 0..base.len() {
        let mut changed = base.clone();
        changed[i] ^= 0x40;
        assert!(hashes.insert(name_hash(&changed)), "byte {i}");
    }
    assert_ne!(name_hash(b"\x01a"), name_hash(b"\x01a\x00"));
    // Spread: 4,096 sequential names fill the low 10 bits' 1,024 buckets evenly enough.
    let mut buckets = [0u32; 1024];
    for i in 0..4096u32 {
        let name = format!("\x05h{i:04}\x07example\x00");
        buckets[(name_hash(name.as_bytes()) & 1023) as usize] += 1;
    }
    assert!(
        buckets.iter().all(|&n| n <= 16),
        "{:?}",
        buckets.iter().max()
    );
}
use std::str::FromStr;

fn w(s: &str) -> Vec<u8> {
    wire_lower(&Name::from_str(s).expect("test name"))
}

#[test]
fn subdomain_respects_label_boundaries() {
    assert!(is_subdomain(&w("a.example.com."), &w("example.com.")));
    assert!(is_subdomain(&w("example.com."), &w("example.com.")));
    assert!(!is_subdomain(&w("badexample.com."), &w("example.com.")));
    assert!(is_subdomain(&w("x.y."), &w(".")));
}

#[test]
fn lowercases_and_round_trips_text() {
    assert_eq!(to_text(&w("WWW.Example.COM.")), "www.example.com.");
    assert_eq!(to_text(&[0]), ".");
    assert_eq!(label_count(&w("a.b.c.")), 3);
    assert_eq!(parent(&w("a.b.")), Some(&w("b.")[..]));
    assert_eq!(parent(&[0]), None);
}

mod canonical {
    use super::*;

    /// Keys order names as `canonical_cmp` does, escapes and case included.
    #[test]
    fn canonical_keys_sort_like_canonical_cmp() {
        let names: Vec<Vec<u8>> = vec![
            b"\x07example\x00".to_vec(),
            b"\x01a\x07example\x00".to_vec(),
            b"\x08yljkjljk\x01a\x07example\x00".to_vec(),
            b"\x01Z\x01a\x07example\x00".to_vec(),
            b"\x04zABC\x01a\x07EXAMPLE\x00".to_vec(),
            b"\x01z\x07example\x00".to_vec(),
            b"\x01\x01\x01z\x07example\x00".to_vec(),
            b"\x01\x00\x01z\x07example\x00".to_vec(),
            b"\x02\x00\x00\x01z\x07example\x00".to_vec(),
            b"\x01*\x01z\x07example\x00".to_vec(),
            b"\x01\xc8\x01z\x07example\x00".to_vec(),
            b"\x02ab\x07example\x00".to_vec(),
            b"\x01a\x01b\x07example\x00".to_vec(),
        ];
        let key = |n: &[u8]| {
            let mut k = [0u8; CANONICAL_KEY_MAX];
            let len = canonical_key(n, &mut k);
            k[..len].to_vec()
        };
        for a in &names {
            for b in &names {
                assert_eq!(key(a).cmp(&key(b)), canonical_cmp(a, b), "{a:?} {b:?}");
            }
        }
    }
}
