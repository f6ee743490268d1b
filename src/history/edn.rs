//! Jepsen's history files as they are: EDN (Clojure's data notation), one operation map per
//! line (`{:type :invoke, :f :send, :value [[:send 5 1]], :time 12, :process 0, :index 0}`,
//! possibly tagged as a record, `#jepsen.history.Op{...}`), or one vector of them. Each
//! operation becomes the JSON object it would be converted to — keywords as their names, maps'
//! keys as text, sets and lists as arrays, tags dropped — on the line it starts on, so the
//! JSON reader (`parse_history`) reads it and names the right line when it is not an event.

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

/// The EDN history `text` as JSON lines, each operation on the line its form starts on (an
/// operation inside a vector: the vector's line plus its position, which is its own line when
/// the vector puts one per line).
pub(super) fn to_json_lines(text: &str) -> Result<String, HistoryError> {
    let mut out = String::new();
    let mut written_lines = 0;
    let mut put = |line: usize, op: Value| {
        while written_lines + 1 < line {
            out.push('\n');
            written_lines += 1;
        }
        out.push_str(&op.to_string());
        out.push('\n');
        written_lines += 1;
    };
    let mut rest = text;
    // The line `counted` (a tail of `text`) starts on: newlines are counted once, as the
    // reading moves on.
    let (mut counted, mut line) = (text, 1);
    loop {
        rest = skip_comments(rest);
        if rest.is_empty() {
            break;
        }
        line += newlines(&counted[..counted.len() - rest.len()]);
        counted = rest;
        let (form, remaining) = edn::read(rest).map_err(|e| match e.code {
            // Named where the unclosed form starts: where its end was meant to be is unknown.
            Code::UnexpectedEOF => HistoryError {
                line,
                message: "not EDN: the form starting here is not closed by the end of the file"
                    .to_string(),
            },
            code => HistoryError {
                line: line + e.line.unwrap_or(1) - 1,
                message: format!("not EDN: {code:?} at column {}", e.column.unwrap_or(0)),
            },
        })?;
        match untagged(&form) {
            Edn::Vector(ops) | Edn::List(ops) => {
                for (i, op) in ops.iter().enumerate() {
                    put(line + i, operation(op, line + i)?);
                }
            }
            _ => put(line, operation(&form, line)?),
        }
        rest = remaining;
    }
    Ok(out)
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
            message: format!("an operation must be an EDN map, not {other}"),
        }),
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
    fn each_operation_lands_on_its_own_line_as_json() {
        let text = "; Jepsen\n{:index 0, :type :invoke, :f :poll, :value [[:poll]], :time 1, \
                    :process 0}\n\n#jepsen.history.Op{:type :ok, :f :poll, :time 2, :process 0, \
                    :value [[:poll {5 [[0 1] [1 nil]]}]], :tags #{:a}, :ratio 1/2, :ch \\x}\n";
        let json = to_json_lines(text).unwrap();
        let lines: Vec<&str> = json.lines().collect();
        assert_eq!(lines.len(), 4, "{json}");
        assert_eq!(lines[0], "");
        let first: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(first["f"], "poll");
        assert_eq!(first["value"], serde_json::json!([["poll"]]));
        assert_eq!(lines[2], "");
        let second: Value = serde_json::from_str(lines[3]).unwrap();
        assert_eq!(
            second["value"],
            serde_json::json!([["poll", {"5": [[0, 1], [1, null]]}]])
        );
        assert_eq!(second["tags"], serde_json::json!(["a"]));
        assert_eq!(
            (second["ratio"].as_f64(), second["ch"].as_str()),
            (Some(0.5), Some("x"))
        );
    }

    #[test]
    fn a_vector_of_operations_puts_each_on_the_next_line() {
        let json = to_json_lines("[{:process 0}\n {:process 1}]").unwrap();
        assert_eq!(json, "{\"process\":0}\n{\"process\":1}\n");
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
        assert!(e.message.contains("must be an EDN map"), "{}", e.message);
        let e = to_json_lines("[{:process 0}\n 7]").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
