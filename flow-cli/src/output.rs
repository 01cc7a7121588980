//! How results reach the user: JSON for scripts (`--json`), or aligned tables and short
//! lines for people, coloured only on a terminal (`anstream` drops the styles when stdout is
//! not one, or when `NO_COLOR` is set).

use crate::error::CliError;
use anstyle::{AnsiColor, Style};
use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

/// Where a command writes, and in which form.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Output {
    /// JSON instead of text.
    pub(crate) json: bool,
}

/// Prints `value` as pretty JSON, one document.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
    line(&text)
}

/// Prints one line of text (styles kept on a terminal only). Control characters that came
/// with stored text are shown escaped (see [`shown`]).
pub(crate) fn line(text: &str) -> Result<(), CliError> {
    let mut out = anstream::stdout().lock();
    writeln!(out, "{}", shown(text))?;
    out.flush()?;
    Ok(())
}

/// `text` safe for a terminal: every control character but a newline and a tab is written as
/// `\u{…}`, except the colour codes [`paint`] adds (`ESC [ digits ; … m`). Stored text (a
/// server's error body in a failure's reason, a step or event name) could otherwise move the
/// cursor, rewrite lines, set the window title or write the clipboard (OSC 52).
pub(crate) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\u{1b}'
            && let Some(sgr) = rest[1..].strip_prefix('[').and_then(|after| {
                let end = after.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
                after[end..].starts_with('m').then_some(end + 3)
            })
        {
            out.push_str(&rest[..sgr]);
            rest = &rest[sgr..];
            continue;
        }
        if c.is_control() && c != '\n' && c != '\t' {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    std::borrow::Cow::Owned(out)
}

/// A table with a header row, no borders, columns aligned.
pub(crate) fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.map(|h| paint(h, Style::new().bold())));
    // Two spaces between columns, none before the first.
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// Prints a table, without its trailing spaces.
pub(crate) fn print_table(table: &Table) -> Result<(), CliError> {
    for row in table.lines() {
        line(row.trim_end())?;
    }
    Ok(())
}

/// `text` in `style` (which the output drops when it is not a terminal).
pub(crate) fn paint(text: &str, style: Style) -> String {
    format!("{style}{text}{style:#}")
}

/// A state's name, coloured by what it asks of an operator.
pub(crate) fn state(name: &str) -> String {
    let colour = match name {
        "finished" => AnsiColor::Green,
        "failed" | "corrupt" | "incompatible" => AnsiColor::Red,
        "paused" | "waiting" | "sleeping" | "awaiting_approval" => AnsiColor::Yellow,
        "cancelled" => AnsiColor::BrightBlack,
        _ => AnsiColor::Cyan,
    };
    paint(name, Style::new().fg_color(Some(colour.into())))
}

/// A time for people: RFC 3339 to the second, UTC.
pub(crate) fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(writable(t)).to_string()
}

/// `t` within what RFC 3339 can write, 1970 to the end of year 9999: a time outside (a
/// corrupt row) is shown as the nearest one. humantime's `Display` fails on those, and
/// `to_string` would panic. Every time the CLI prints goes through it.
pub(crate) fn writable(t: SystemTime) -> SystemTime {
    let latest = std::time::UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999);
    t.clamp(std::time::UNIX_EPOCH, latest)
}

/// How long ago `t` was (or how far ahead), e.g. `3m ago`, `in 2h`.
pub(crate) fn relative(t: SystemTime, now: SystemTime) -> String {
    match now.duration_since(t) {
        Ok(ago) => format!("{} ago", short(ago)),
        Err(ahead) => format!("in {}", short(ahead.duration())),
    }
}

/// A duration in its largest unit or two: `850ms`, `12.3s`, `4m 05s`, `3h 20m`, `2d 4h`.
pub(crate) fn short(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{}.{}s", s, (ms % 1_000) / 100)
    } else if s < 3_600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h {:02}m", s / 3_600, (s % 3_600) / 60)
    } else {
        format!("{}d {}h", s / 86_400, (s % 86_400) / 3_600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_short() {
        let cases = [
            (Duration::from_millis(850), "850ms"),
            (Duration::from_millis(12_345), "12.3s"),
            (Duration::from_secs(245), "4m 05s"),
            (Duration::from_secs(3 * 3_600 + 20 * 60 + 7), "3h 20m"),
            (Duration::from_hours(52), "2d 4h"),
        ];
        for (d, text) in cases {
            assert_eq!(short(d), text);
        }
    }

    #[test]
    fn relative_times_say_which_way() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(relative(now - Duration::from_mins(3), now), "3m 00s ago");
        assert_eq!(relative(now + Duration::from_hours(2), now), "in 2h 00m");
    }

    #[test]
    fn stored_control_characters_are_shown_escaped_and_colours_kept() {
        let red = paint("failed", Style::new().fg_color(Some(AnsiColor::Red.into())));
        assert_eq!(shown(&red), red);
        assert_eq!(shown("a\tb\nc"), "a\tb\nc");
        assert_eq!(
            shown("boom\u{1b}]52;c;aGk=\u{7}\u{1b}[2Jend\r"),
            "boom\\u{1b}]52;c;aGk=\\u{7}\\u{1b}[2Jend\\u{d}"
        );
        assert_eq!(shown("\u{1b}["), "\\u{1b}[");
    }
}
