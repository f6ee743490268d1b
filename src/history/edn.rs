//! Jepsen's history files as they are: EDN (Clojure's data notation), one operation map per
//! line (`{:type :invoke, :f :send, :value [[:send 5 1]], :time 12, :process 0, :index 0}`,
//! possibly tagged as a record, `#jepsen.history.Op{...}`), or one vector of them. Each
//! operation becomes the JSON object it would be converted to — keywords as their names, maps'
//! keys as text, sets and lists as arrays, tags dropped — one per JSON line, with the line of
//! the file it starts on, so the JSON reader (`parse_history`) reads it and an error names the
//! file's own line.

use super::event::HistoryError;
use clojure_reader::edn::{self, Edn};
use clojure_reader::error::Code;
use serde_json::{Map, Number, Value};

/// Whether `text` is EDN rather than JSON lines: it starts (after blanks and commas) with a
/// vector, a list, a tag or a comment, or with a map whose first key is a keyword. A JSON
/// line starts with `{"`.
pub(super) fn looks_like_edn(text: &str) -> bool {
    let text = skip_blanks(text);
    match text.chars().next() {
        Some('[' | '(' | '#' | ';') => true,
        Some('{') => skip_blanks(&text[1..]).starts_with(':'),
        _ => false,
    }
}

/// What EDN reads as nothing between forms: whitespace and commas.
fn skip_blanks(text: &str) -> &str {
    text.trim_start_matches(|c: char| c.is_whitespace() || c == ',')
}

/// How deep forms may nest: a Jepsen operation nests about six deep (a poll's records inside
/// its map inside its micro-operation inside its value inside the operation). The reader and
/// the conversion recurse, so a file of a million `[` must be refused before it is read.
const MAX_DEPTH: usize = 64;

/// An EDN history converted: one JSON object per line, and the line of the file each came from
/// (`lines[i]` for JSON line `i + 1`), so an error found in the JSON names the file's line.
#[derive(Debug, Default)]
pub(super) struct Converted {
    pub json: String,
    pub lines: Vec<usize>,
}

impl Converted {
    fn push(&mut self, line: usize, op: Value) {
        self.json.push_str(&op.to_string());
        self.json.push('\n');
        self.lines.push(line);
    }

    /// The file's line of JSON line `json_line`.
    pub fn source_line(&self, json_line: usize) -> usize {
        json_line
            .checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .copied()
            .unwrap_or(json_line)
    }
}

/// The EDN history `text` converted, operation by operation: top-level maps, or the maps of
/// one top-level vector (or list), each read on its own with the line it starts on.
pub(super) fn to_json_lines(text: &str) -> Result<Converted, HistoryError> {
    check_depth(text)?;
    let mut out = Converted::default();
    let mut rest = text;
    // The line `counted` (a tail of `text`) starts on: newlines are counted once, as the
    // reading moves on.
    let (mut counted, mut line) = (text, 1);
    // Inside the top-level vector or list of operations: its closing bracket and first line.
    let mut inside: Option<(char, usize)> = None;
    loop {
        rest = skip_comments(rest);
        line += newlines(&counted[..counted.len() - rest.len()]);
        counted = rest;
        let Some(first) = rest.chars().next() else {
            if let Some((_, opened)) = inside {
                return Err(HistoryError {
                    line: opened,
                    message: "not EDN: the vector of operations starting here is not closed \
                              by the end of the file"
                        .to_string(),
                });
            }
            break;
        };
        match (inside, first) {
            (None, '[' | '(') => {
                inside = Some((if first == '[' { ']' } else { ')' }, line));
                rest = &rest[1..];
                continue;
            }
            (Some((close, _)), c) if c == close => {
                inside = None;
                rest = &rest[1..];
                continue;
            }
            _ => {}
        }
        let (form, remaining) = match edn::read(rest) {
            Ok(read) => read,
            // Nothing but discarded forms (`#_`) was left.
            Err(e) if matches!(e.code, Code::UnexpectedEOF) && e.line.is_none() => {
                rest = "";
                continue;
            }
            // Named where the unclosed form starts: where its end was meant to be is unknown.
            Err(e) if matches!(e.code, Code::UnexpectedEOF) => {
                return Err(HistoryError {
                    line,
                    message: "not EDN: the form starting here is not closed by the end of the \
                              file"
                        .to_string(),
                })
            }
            Err(e) => {
                return Err(HistoryError {
                    line: line + e.line.unwrap_or(1) - 1,
                    message: format!("not EDN: {:?} at column {}", e.code, e.column.unwrap_or(0)),
                })
            }
        };
        out.push(line, operation(&form, line)?);
        rest = remaining;
    }
    Ok(out)
}

/// Refuses forms nested deeper than `MAX_DEPTH`, naming the line where the limit is passed.
/// Brackets inside strings, comments and character literals (`\(`) do not count.
fn check_depth(text: &str) -> Result<(), HistoryError> {
    let (mut depth, mut line) = (0usize, 1);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => line += usize::from(chars.next() == Some('\n')),
                        '\n' => line += 1,
                        _ => {}
                    }
                }
            }
            '\\' => {
                chars.next();
            }
            ';' => line += usize::from(chars.by_ref().any(|c| c == '\n')),
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(HistoryError {
                        line,
                        message: format!("forms nested deeper than {MAX_DEPTH} levels"),
                    });
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Skips blanks and `;` comments up to the next form.
fn skip_comments(mut text: &str) -> &str {
    loop {
        text = skip_blanks(text);
        match text.strip_prefix(';') {
            Some(comment) => text = comment.split_once('\n').map_or("", |(_, after)| after),
            None => return text,
        }
    }
}

fn newlines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// A tagged form's value (`#jepsen.history.Op{...}` is a map); any other form itself.
fn untagged<'a, 'e>(form: &'a Edn<'e>) -> &'a Edn<'e> {
    match form {
        Edn::Tagged(_, inner) => untagged(inner),
        other => other,
    }
}

/// One operation: a map (possibly tagged), as a JSON object.
fn operation(form: &Edn, line: usize) -> Result<Value, HistoryError> {
    match untagged(form) {
        map @ Edn::Map(_) => Ok(to_json(map)),
        other => Err(HistoryError {
            line,
            message: format!("an operation must be an EDN map, not {}", kind(other)),
        }),
    }
}

/// What kind of form `form` is, for an error (the form itself may be large).
fn kind(form: &Edn) -> &'static str {
    match form {
        Edn::Vector(_) => "a vector",
        Edn::Set(_) => "a set",
        Edn::Map(_) => "a map",
        Edn::List(_) => "a list",
        Edn::Key(_) => "a keyword",
        Edn::Symbol(_) => "a symbol",
        Edn::Str(_) => "a string",
        Edn::Int(_) | Edn::Double(_) | Edn::Rational(_) => "a number",
        Edn::Tagged(..) => "a tagged form",
        Edn::Char(_) => "a character",
        Edn::Bool(_) => "a boolean",
        Edn::Nil => "nil",
        #[allow(unreachable_patterns)]
        _ => "another form",
    }
}

/// The JSON a converter would write for `form`.
fn to_json(form: &Edn) -> Value {
    match form {
        Edn::Map(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (key_text(k), to_json(v)))
                .collect::<Map<String, Value>>(),
        ),
        Edn::Vector(items) | Edn::List(items) => Value::Array(items.iter().map(to_json).collect()),
        Edn::Set(items) => Value::Array(items.iter().map(to_json).collect()),
        Edn::Key(name) | Edn::Symbol(name) | Edn::Str(name) => Value::String(name.to_string()),
        Edn::Int(i) => Value::Number((*i).into()),
        Edn::Double(d) => Number::from_f64(d.into_inner()).map_or(Value::Null, Value::Number),
        Edn::Rational((n, d)) => {
            Number::from_f64(*n as f64 / *d as f64).map_or(Value::Null, Value::Number)
        }
        Edn::Tagged(_, inner) => to_json(inner),
        Edn::Char(c) => Value::String(c.to_string()),
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Nil => Value::Null,
        // Forms of features this build leaves out (big numbers): as their text.
        #[allow(unreachable_patterns)]
        other => Value::String(other.to_string()),
    }
}

/// A map key as JSON object keys must be: text. A keyword, symbol or string gives its name;
/// a number (Jepsen's poll results are keyed by the log's number) its digits.
fn key_text(key: &Edn) -> String {
    match untagged(key) {
        Edn::Key(name) | Edn::Symbol(name) | Edn::Str(name) => name.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(text: &str) -> Vec<(usize, Value)> {
        let c = to_json_lines(text).unwrap();
        let values = c.json.lines().map(|l| serde_json::from_str(l).unwrap());
        c.lines.iter().copied().zip(values).collect()
    }

    #[test]
    fn edn_is_told_from_json_lines() {
        assert!(looks_like_edn("{:type :invoke}"));
        assert!(looks_like_edn("\n ,{ :type :invoke}"));
        assert!(looks_like_edn("[{:type :invoke}]"));
        assert!(looks_like_edn("#jepsen.history.Op{:type :ok}"));
        assert!(looks_like_edn("; a comment\n{:type :ok}"));
        assert!(!looks_like_edn(r#"{"type":"invoke"}"#));
        assert!(!looks_like_edn(""));
        assert!(!looks_like_edn("garbage"));
    }

    #[test]
    fn each_operation_is_converted_with_the_line_it_starts_on() {
        let text = "; Jepsen\n{:index 0, :type :invoke, :f :poll, :value [[:poll]], :time 1, \
                    :process 0}\n\n#jepsen.history.Op{:type :ok, :f :poll, :time 2, :process 0, \
                    :value [[:poll {5 [[0 1] [1 nil]]}]], :tags #{:a}, :ratio 1/2, :ch \\x}\n\
                    #_{:discarded 1}";
        let ops = json_of(text);
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert_eq!(ops[0].0, 2);
        assert_eq!(ops[0].1["f"], "poll");
        assert_eq!(ops[0].1["value"], serde_json::json!([["poll"]]));
        assert_eq!(ops[1].0, 4);
        assert_eq!(
            ops[1].1["value"],
            serde_json::json!([["poll", {"5": [[0, 1], [1, null]]}]])
        );
        assert_eq!(ops[1].1["tags"], serde_json::json!(["a"]));
        assert_eq!(
            (ops[1].1["ratio"].as_f64(), ops[1].1["ch"].as_str()),
            (Some(0.5), Some("x"))
        );
    }

    #[test]
    fn a_vector_of_operations_gives_each_its_own_line() {
        let ops = json_of("[{:process 0} {:process 1}\n ; two on one line\n {:process 2}]\n");
        let lines: Vec<usize> = ops.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 1, 3]);
        assert_eq!(ops[2].1["process"], 2);
        // A second vector after the first is read the same way.
        assert_eq!(json_of("[{:a 1}]\n({:a 2})").len(), 2);
    }

    #[test]
    fn bad_edn_and_forms_that_are_not_operations_name_their_line() {
        let e = to_json_lines("{:process 0}\n{:process 1\n").unwrap_err();
        assert_eq!(e.line, 2, "{}", e.message);
        assert!(e.message.contains("not closed"), "{}", e.message);
        let e =
            to_json_lines("{:process 0}\n\n{:process 1 :time 99999999999999999999}").unwrap_err();
        assert_eq!(e.line, 3, "{}", e.message);
        assert!(
            e.message.starts_with("not EDN: InvalidNumber"),
            "{}",
            e.message
        );
        let e = to_json_lines("{:process 0}\n\n:keyword\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.message, "an operation must be an EDN map, not a keyword");
        let e = to_json_lines("[{:process 0}\n 7]").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "an operation must be an EDN map, not a number")
        );
        let e = to_json_lines("\n[{:process 0}\n {:process 1}").unwrap_err();
        assert_eq!(e.line, 2, "{}", e.message);
        assert!(e.message.contains("not closed"), "{}", e.message);
    }

    /// Nesting deep enough to overflow the stack of a recursive reader is refused up front,
    /// with its line; brackets in strings, comments and character literals do not count.
    #[test]
    fn forms_nested_too_deep_are_refused_before_they_are_read() {
        let deep = format!("{{:process 0}}\n{}", "[".repeat(1_000_000));
        let e = to_json_lines(&deep).unwrap_err();
        assert_eq!(e.line, 2, "{}", e.message);
        assert!(e.message.contains("nested deeper than 64"), "{}", e.message);
        let fine = format!(
            "{{:s \"{}\" :c \\( :d [[[]]]}} ; {}\n{{:p 1}}",
            "[".repeat(100),
            "(".repeat(100)
        );
        assert_eq!(json_of(&fine).len(), 2);
    }
}
