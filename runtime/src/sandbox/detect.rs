//! What a hook file is, from its first bytes.

/// The two kinds of WebAssembly binaries we run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A core module (WASI preview 1).
    Core,
    /// A component (WASI preview 2).
    Component,
}

/// Classify `bytes`; `Err` describes what was found instead, for the user.
pub fn detect(bytes: &[u8]) -> Result<WasmKind, String> {
    if bytes.len() >= 8 && &bytes[..4] == b"\0asm" {
        return match [bytes[4], bytes[5], bytes[6], bytes[7]] {
            [1, 0, 0, 0] => Ok(WasmKind::Core),
            [0x0d, 0, 1, 0] => Ok(WasmKind::Component),
            [a, b, c, d] => Err(format!("a WebAssembly binary of unsupported version {a:02x} {b:02x} {c:02x} {d:02x}")),
        };
    }
    if bytes.starts_with(b"#!") {
        let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let line: String = String::from_utf8_lossy(&line[..line.len().min(80)]).trim().to_string();
        return Err(format!("a shell script ({line})"));
    }
    if bytes.starts_with(b"\x7fELF") {
        return Err("a Linux ELF executable".into());
    }
    if bytes.is_empty() {
        return Err("an empty file".into());
    }
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    Err(format!("unknown data (starting with bytes {})", head.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(detect(b"\0asm\x01\0\0\0rest"), Ok(WasmKind::Core));
        assert_eq!(detect(b"\0asm\x0d\0\x01\0"), Ok(WasmKind::Component));
        assert_eq!(detect(b"#!/bin/sh\necho hi\n").unwrap_err(), "a shell script (#!/bin/sh)");
        assert_eq!(detect(b"\x7fELF\x02\x01").unwrap_err(), "a Linux ELF executable");
        assert!(detect(b"").is_err());
        assert!(detect(b"\0asm").is_err());
    }
}
