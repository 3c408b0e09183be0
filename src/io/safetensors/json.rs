//! The JSON a safetensors header needs, and nothing more: objects, strings
//! (every JSON escape, `\uXXXX` surrogate pairs included), unsigned integers,
//! arrays of them and `null`.
//!
//! The reader has no generic "any value" entry point: its caller
//! ([`super::parse_header`]) asks for the value each position of the format
//! holds, so nesting is bounded by the format (depth 3) without recursion, and
//! a value of any other kind is an error where it stands. Every step consumes
//! input, so reading is linear in the header's length, and what it allocates
//! (strings, integer lists) is bounded by the bytes it read.
//!
//! The writer escapes strings as `serde_json` does (`\"`, `\\`, `\b`, `\f`,
//! `\n`, `\r`, `\t`, other control characters as `\u00XX`), so headers are
//! byte-for-byte what the `safetensors` crate writes for the same entries.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};

const OP: &str = "from_safetensors";

/// A format error of the header's JSON.
pub(super) fn bad(detail: &'static str) -> Error {
    Error::Format { op: OP, detail }
}

const SYNTAX: &str = "the header is not valid safetensors JSON";

/// A cursor over a header's bytes (valid UTF-8, checked by the caller).
pub(super) struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `s`.
    pub(super) fn new(s: &'a str) -> Self {
        Reader {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return) and
    /// returns the next byte, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.s.get(self.pos) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes `b` (after whitespace) if it comes next.
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Consumes `b` (after whitespace), or fails with `detail`.
    pub(super) fn expect(&mut self, b: u8, detail: &'static str) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(bad(detail))
        }
    }

    /// Whether a string comes next (after whitespace).
    pub(super) fn string_next(&mut self) -> bool {
        self.peek() == Some(b'"')
    }

    /// Consumes `null` if it comes next.
    pub(super) fn null(&mut self) -> bool {
        let hit = self.peek().is_some() && self.s[self.pos..].starts_with(b"null");
        if hit {
            self.pos += 4;
        }
        hit
    }

    /// Succeeds if only whitespace is left.
    pub(super) fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(bad("the header has data after its JSON object")),
        }
    }

    /// Inside an object whose `{` was consumed: the next key (its `:`
    /// consumed too), or `None` at the closing `}`. `first` is true before
    /// the first key and is cleared here.
    pub(super) fn next_key(&mut self, first: &mut bool) -> Result<Option<String>> {
        if self.eat(b'}') {
            return Ok(None);
        }
        if !core::mem::take(first) {
            self.expect(b',', SYNTAX)?;
        }
        let key = self.string()?;
        self.expect(b':', SYNTAX)?;
        Ok(Some(key))
    }

    /// A JSON string, unescaped.
    pub(super) fn string(&mut self) -> Result<String> {
        if !self.eat(b'"') {
            return Err(bad("a string was expected in the header"));
        }
        let mut out = String::new();
        loop {
            // The run of plain characters up to a quote, backslash or control
            // character, copied at once (it is whole UTF-8: those three are
            // ASCII and the input is valid UTF-8).
            let run = self.s[self.pos..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or(bad("a string in the header is not terminated"))?;
            let chunk = &self.s[self.pos..self.pos + run];
            out.push_str(core::str::from_utf8(chunk).map_err(|_| bad(SYNTAX))?);
            self.pos += run;
            let b = self.s[self.pos];
            self.pos += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => out.push(self.escape()?),
                _ => return Err(bad("a string in the header holds a raw control character")),
            }
        }
    }

    /// The character of the escape after a backslash.
    fn escape(&mut self) -> Result<char> {
        let b = *self
            .s
            .get(self.pos)
            .ok_or(bad("a string in the header is not terminated"))?;
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                const LONE: &str = "a string in the header has an unpaired UTF-16 surrogate";
                let hi = self.hex4()?;
                let code = match hi {
                    0xd800..=0xdbff => {
                        if !self.s[self.pos..].starts_with(b"\\u") {
                            return Err(bad(LONE));
                        }
                        self.pos += 2;
                        let lo = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&lo) {
                            return Err(bad(LONE));
                        }
                        0x1_0000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(bad(LONE)),
                    _ => hi,
                };
                char::from_u32(code).ok_or(bad(LONE))?
            }
            _ => return Err(bad("a string in the header has an invalid escape")),
        })
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or(bad("a \\u escape in the header is cut short"))?;
        let mut v = 0;
        for &d in digits {
            let x = (d as char)
                .to_digit(16)
                .ok_or(bad("a \\u escape in the header is not hexadecimal"))?;
            v = v * 16 + x;
        }
        self.pos += 4;
        Ok(v)
    }

    /// An unsigned integer in JSON's syntax (no sign, fraction, exponent or
    /// leading zero) that fits a `usize`.
    pub(super) fn uint(&mut self) -> Result<usize> {
        const NOT: &str = "a shape or offset in the header is not an unsigned integer";
        self.peek();
        let digits = self.s[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let text = &self.s[self.pos..self.pos + digits];
        if digits == 0 || (digits > 1 && text[0] == b'0') {
            return Err(bad(NOT));
        }
        let mut v: usize = 0;
        for &d in text {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add((d - b'0') as usize))
                .ok_or(bad("a shape or offset in the header is too large"))?;
        }
        self.pos += digits;
        // A fraction or exponent would make it a float.
        if matches!(self.s.get(self.pos), Some(b'.' | b'e' | b'E')) {
            return Err(bad(NOT));
        }
        Ok(v)
    }

    /// An array of unsigned integers (`[` to `]`), each passed to `f`.
    pub(super) fn uints(&mut self, mut f: impl FnMut(usize) -> Result<()>) -> Result<()> {
        self.expect(
            b'[',
            "a shape or offsets entry in the header is not an array",
        )?;
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            f(self.uint()?)?;
            if self.eat(b']') {
                return Ok(());
            }
            self.expect(b',', SYNTAX)?;
        }
    }
}

/// Appends `s` as a JSON string (quoted and escaped as `serde_json` does).
pub(super) fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..0x20 => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..i]);
        out.extend_from_slice(&[b'\\', short]);
        if short == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// Appends `v` in decimal.
pub(super) fn write_uint(out: &mut Vec<u8>, v: usize) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(crate::math::decimal(v, &mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn read(s: &str) -> Result<String> {
        let mut r = Reader::new(s);
        let v = r.string()?;
        r.end()?;
        Ok(v)
    }

    #[test]
    fn strings_unescape_every_json_escape() {
        assert_eq!(read(r#""a\"b\\c\/d""#).unwrap(), "a\"b\\c/d");
        assert_eq!(read(r#""\b\f\n\r\t""#).unwrap(), "\u{8}\u{c}\n\r\t");
        assert_eq!(read(r#""\u00e9\u0041""#).unwrap(), "éA");
        assert_eq!(read(r#""\uD83D\uDE00""#).unwrap(), "😀");
        assert_eq!(read(r#""\ud83d\ude00 x""#).unwrap(), "😀 x");
        assert_eq!(read(" \"ü\u{7f}\" ").unwrap(), "ü\u{7f}");
    }

    #[test]
    fn bad_strings_are_errors() {
        for s in [
            r#""\ud83d""#,
            r#""\ud83d\u0041""#,
            r#""\ude00""#,
            r#""\ud83dx""#,
            r#""\u12""#,
            r#""\u12g4""#,
            r#""\x""#,
            "\"a\nb\"",
            "\"\u{0}\"",
            r#""open"#,
            r#""\"#,
            "x",
        ] {
            assert!(read(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn unsigned_integers_follow_json_syntax() {
        let int = |s: &str| {
            let mut r = Reader::new(s);
            r.uint()
        };
        assert_eq!(int("0").unwrap(), 0);
        assert_eq!(int(" 1234").unwrap(), 1234);
        assert_eq!(int(&usize::MAX.to_string()).unwrap(), usize::MAX);
        for s in [
            "",
            "-1",
            "-0",
            "01",
            "1.0",
            "1e3",
            "1E3",
            "x",
            "18446744073709551616",
        ] {
            assert!(int(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn written_strings_read_back() {
        for s in ["", "plain", "q\"b\\s/", "\u{0}\u{1f}\n\t\u{7f}", "é😀"] {
            let mut out = Vec::new();
            write_string(&mut out, s);
            let text = core::str::from_utf8(&out).unwrap();
            assert_eq!(read(text).unwrap(), s);
        }
        let mut out = Vec::new();
        write_string(&mut out, "a\u{1}\"");
        assert_eq!(out, br#""a\u0001\"""#);
        let mut out = Vec::new();
        write_uint(&mut out, 0);
        out.push(b',');
        write_uint(&mut out, usize::MAX);
        assert_eq!(
            core::str::from_utf8(&out).unwrap(),
            alloc::format!("0,{}", usize::MAX)
        );
    }
}
