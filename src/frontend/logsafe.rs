//! Client-supplied text in log lines.
//!
//! Owns: [`Escaped`], the one way a string a client (or a backend relaying a client's words) chose
//! reaches the log: control characters (newline, carriage return, escape sequences, …) and
//! backslashes are written as Rust escapes, so a user name such as `"x\nINFO forged"` cannot start a
//! log line of its own or drive a terminal.
//!
//! Must never: drop or shorten text (the log must still tell what the client sent).

use std::fmt;

/// Displays a string with its control characters and backslashes escaped.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c == '\\' || c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn control_characters_cannot_break_a_line() {
        let s = Escaped("ann\n2026-01-01 INFO forged\r\u{1b}[2J\\").to_string();
        assert_eq!(s, "ann\\n2026-01-01 INFO forged\\r\\u{1b}[2J\\\\");
        assert!(!s.chars().any(char::is_control));
        assert_eq!(Escaped("plain \"name\" é").to_string(), "plain \"name\" é");
    }
}
