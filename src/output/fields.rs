//! CSV fields written straight into a byte buffer: ids quoted only when they must be, and
//! fixed-point numbers printed as `format!` prints them, without its cost.

use std::io::Write as _;

/// Writes `id` as a CSV field, quoted only when it must be (and when it starts or ends
/// with a space, which a reader that trims would lose).
pub fn write_field(out: &mut Vec<u8>, id: &str) {
    put_field(out, id, id.starts_with(' ') || id.ends_with(' '));
}

/// Writes `s` as a CSV field quoted exactly as the `csv` crate's writer quotes it (only
/// for a comma, a quote or a line break; edge spaces stay bare), for the files that
/// were first written by that crate and keep their bytes.
pub fn write_csv_field(out: &mut Vec<u8>, s: &str) {
    put_field(out, s, false);
}

/// Writes `s`, quoted (inner quotes doubled) when `quote` or when it holds a comma, a
/// quote or a line break; allocates nothing beyond `out`.
fn put_field(out: &mut Vec<u8>, s: &str, quote: bool) {
    if quote || s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for (k, part) in s.split('"').enumerate() {
            if k > 0 {
                out.extend_from_slice(b"\"\"");
            }
            out.extend_from_slice(part.as_bytes());
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Appends `format!("{v:.decimals$}")` of a finite `v`. Rust's exact formatting (Grisu, then
/// Dragon when Grisu cannot decide) was most of the time `cobuy customers` spent writing its file: the
/// common case, `v * 10^decimals` below 2^52 and not within a few units in the last place of
/// a half (so the exact product rounds the same way), is rounded to an integer and printed with
/// the point inserted; anything else (negative, huge, near a tie) goes to `format!`.
pub fn put_fixed(buf: &mut Vec<u8>, v: f64, decimals: usize) {
    const SCALE: [f64; 7] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6];
    if decimals < SCALE.len() && v.is_sign_positive() {
        let s = v * SCALE[decimals];
        let whole = s.floor();
        let frac = s - whole;
        // |s - v * 10^decimals| is at most half an ulp of s, far below this margin.
        if s < (1u64 << 52) as f64 && (frac - 0.5).abs() > s * 1e-15 + 1e-300 {
            let n = whole as u64 + u64::from(frac > 0.5);
            let mut digits = [b'0'; 24];
            let (mut at, mut rest) = (digits.len(), n);
            while rest > 0 || at > digits.len() - decimals - 1 {
                at -= 1;
                digits[at] = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            let point = digits.len() - decimals;
            buf.extend_from_slice(&digits[at..point]);
            if decimals > 0 {
                buf.push(b'.');
                buf.extend_from_slice(&digits[point..]);
            }
            return;
        }
    }
    let _ = write!(buf, "{v:.decimals$}");
}

#[cfg(test)]
mod tests {
    use super::put_fixed;

    /// The fast path prints what `format!` does: values of every size the file holds, ties
    /// and values a hair from them (which must fall back), zero and negatives.
    #[test]
    fn fixed_prints_what_format_prints() {
        let mut values =
            vec![0.0, -0.0, 0.5, 1.5, 2.5, 0.125, 0.375, 1e-7, 0.0049999999, 0.005, 123456.5, -1.25, 4.6e15];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            // xorshift: mantissas of every kind over twenty decades.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64;
            let decade = (x % 20) as i32 - 12;
            values.push(mantissa * 10f64.powi(decade));
            // Exact halves at 2 and 4 decimals, and their neighbours.
            let half = ((x >> 20) % 100_000) as f64 + 0.5;
            for d in [1e2, 1e4] {
                let h = half / d;
                values.extend([h, f64::from_bits(h.to_bits() + 1), f64::from_bits(h.to_bits() - 1)]);
            }
        }
        let mut buf = Vec::new();
        for v in values {
            for decimals in [0, 2, 4, 6] {
                buf.clear();
                put_fixed(&mut buf, v, decimals);
                assert_eq!(String::from_utf8_lossy(&buf), format!("{v:.decimals$}"), "{v:e} at {decimals}");
            }
        }
    }
}
