//! The texts the character rule refuses (docs/behaviour.md §2, "Characters"), shared by the HTTP
//! and the gRPC checks so that both transports are held to the same samples.

/// Control characters (Unicode category Cc): C0, escape sequences, DEL and C1.
pub const CONTROL: &[&str] = &[
    "ab\u{0}cd",
    "ab\u{7}cd",
    "\u{1b}[31mred",
    "ab\u{7f}cd",
    "ab\u{85}cd",
    "a\u{9f}bc",
];

/// Bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069).
pub const BIDI: &[&str] = &[
    "ab\u{202E}cd",
    "ab\u{202A}cd",
    "ab\u{2066}cd",
    "ab\u{2069}cd",
];

/// Line feed and tab: refused in a one-line text, kept in a multi-line one.
pub const LINES: &str = "line\none\ttwo";

/// A right-to-left text with no control characters: accepted everywhere.
pub const RIGHT_TO_LEFT: &str = "שלום עולם";
