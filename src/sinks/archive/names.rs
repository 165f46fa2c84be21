//! Service names as directory names. A service name is never trusted as a
//! path: every byte outside `[A-Za-z0-9_.-]`, and a leading `.`, is
//! percent-encoded, so `..`, `a/b`, `.x` and `a:b` all stay one plain
//! directory inside the archive (`%2E.`, `a%2Fb`, `%2Ex`, `a%3Ab`). The
//! escape is reversible, and restore decodes it. A name whose escape would
//! be too long for a file system keeps a prefix and a hash instead (`~`
//! marks it; the service is then read from each line).

/// Longest directory name written: well under the usual 255-byte limit.
const MAX_DIR_LEN: usize = 200;

/// The directory that holds `service`'s files.
pub fn dir_name(service: &str) -> String {
    let mut out = String::with_capacity(service.len());
    for (i, b) in service.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() <= MAX_DIR_LEN {
        return out;
    }
    // Cut at a whole escape, so the prefix still decodes by eye.
    let mut cut = MAX_DIR_LEN - 17;
    while out.as_bytes()[cut - 1] == b'%' || out.as_bytes()[cut - 2] == b'%' {
        cut -= 1;
    }
    format!("{}~{:016x}", &out[..cut], fnv1a(service.as_bytes()))
}

/// The service a directory name stands for; `None` for a shortened name (or
/// a name this archive did not write).
pub fn service_of(dir: &str) -> Option<String> {
    if dir.contains('~') || dir.starts_with('.') {
        return None;
    }
    let bytes = dir.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = dir.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// FNV-1a, 64 bits: stable across versions and platforms, unlike std's
/// hasher, so a shortened name stays the same directory after an upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_one_plain_directory() {
        for (name, dir) in [
            ("api", "api"),
            ("api.v2", "api.v2"),
            ("..", "%2E."),
            (".", "%2E"),
            (".x", "%2Ex"),
            ("a/b", "a%2Fb"),
            ("../../etc", "%2E.%2F..%2Fetc"),
            ("a:b", "a%3Ab"),
            ("a\0b", "a%00b"),
            ("π", "%CF%80"),
            ("50%", "50%25"),
        ] {
            assert_eq!(dir_name(name), dir, "{name:?}");
            assert_eq!(service_of(dir).as_deref(), Some(name));
            assert!(!dir.contains('/') && !dir.starts_with('.'));
        }
    }

    #[test]
    fn long_names_are_shortened_distinctly() {
        let a = "é".repeat(120);
        let b = format!("{}e", "é".repeat(119));
        let (da, db) = (dir_name(&a), dir_name(&b));
        assert!(da.len() <= MAX_DIR_LEN && db.len() <= MAX_DIR_LEN);
        assert_ne!(da, db);
        assert_eq!(service_of(&da), None);
    }
}
