//! `testkit stdin`: the stdin reader. It says whether its stdin and stdout are terminals, reads
//! stdin to end of file with plain `read(2)` calls, and reports every line and then the end of
//! file, with a checksum of everything it read, so the host can compare it with what it sent
//! (`docker run -i` fed from a pipe, or a user typing at `docker run -it`).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::unistd::read;

use crate::args::{unknown, Args};
use crate::protocol::{fact, handshake, Failure};

/// How much of a line the `line` fact shows (its `len` is always the whole line's).
pub const SHOWN: usize = 64;

pub fn run(mut args: Args) -> Result<(), Failure> {
    if let Some(extra) = args.next_str()? {
        return Err(unknown(&extra));
    }
    handshake("stdin");
    let stdin = std::io::stdin();
    fact(format_args!(
        "stdin tty={} stdout_tty={}",
        stdin.is_terminal(),
        std::io::stdout().is_terminal()
    ));
    let mut reader = Reader::default();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match read(stdin.as_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => reader.feed(&buf[..n]).into_iter().for_each(fact),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Failure::internal(format!("read stdin: {e}"))),
        }
    }
    reader.finish().into_iter().for_each(fact);
    Ok(())
}

/// What has been read so far: the line being read, and the totals.
#[derive(Default)]
pub struct Reader {
    partial: Vec<u8>,
    lines: u64,
    bytes: u64,
    fnv1a: Fnv1a,
}

impl Reader {
    /// Takes one chunk; returns the `line` facts of the lines it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        self.bytes += chunk.len() as u64;
        self.fnv1a.update(chunk);
        let mut done = Vec::new();
        for &byte in chunk {
            if byte == b'\n' {
                done.push(self.line());
            } else {
                self.partial.push(byte);
            }
        }
        done
    }

    /// At end of file: the last line if it had no newline, then `eof`.
    pub fn finish(mut self) -> Vec<String> {
        let mut done = Vec::new();
        if !self.partial.is_empty() {
            done.push(self.line());
        }
        done.push(format!(
            "eof lines={} bytes={} fnv1a={:016x}",
            self.lines, self.bytes, self.fnv1a.0
        ));
        done
    }

    fn line(&mut self) -> String {
        self.lines += 1;
        let line = std::mem::take(&mut self.partial);
        format!(
            "line n={} len={} text={}",
            self.lines,
            line.len(),
            escaped(&line[..SHOWN.min(line.len())])
        )
    }
}

/// Printable ASCII as is; spaces, control bytes, `\` and non-ASCII as `\xNN`, so a value never
/// holds a space.
pub fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'\\' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// 64-bit FNV-1a, the checksum of the `eof` fact.
pub struct Fnv1a(pub u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_reported_across_chunks_and_the_last_one_without_a_newline_too() {
        let mut reader = Reader::default();
        assert_eq!(reader.feed(b"alpha\nbr"), ["line n=1 len=5 text=alpha"]);
        assert!(reader.feed(b"avo").is_empty());
        assert_eq!(reader.feed(b"\n\ntail"), ["line n=2 len=5 text=bravo", "line n=3 len=0 text="]);
        let end = reader.finish();
        assert_eq!(end[0], "line n=4 len=4 text=tail");
        let mut sum = Fnv1a::default();
        sum.update(b"alpha\nbravo\n\ntail");
        assert_eq!(end[1], format!("eof lines=4 bytes=17 fnv1a={:016x}", sum.0));
    }

    #[test]
    fn long_lines_are_cut_and_odd_bytes_escaped() {
        let mut reader = Reader::default();
        let long = [b'x'; 100];
        let line = &reader.feed(&[&long[..], b"\n"].concat())[0];
        assert_eq!(*line, format!("line n=1 len=100 text={}", "x".repeat(SHOWN)));
        assert_eq!(escaped(b"a b\\\x04\xff"), "a\\x20b\\x5c\\x04\\xff");
        assert_eq!(
            Reader::default().finish(),
            [format!("eof lines=0 bytes=0 fnv1a={:016x}", Fnv1a::default().0)]
        );
    }

    #[test]
    fn fnv1a_matches_its_reference_values() {
        let mut sum = Fnv1a::default();
        assert_eq!(sum.0, 0xcbf29ce484222325);
        sum.update(b"a");
        assert_eq!(sum.0, 0xaf63dc4c8601ec8c);
    }
}
