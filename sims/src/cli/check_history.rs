//! `check-history FILE`: the checker on any history file in the documented format.

use seedlog::history::{check, parse_history};

pub fn main(file: &std::path::Path) -> i32 {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            println!("RESULT error reason=unreadable-file");
            return 2;
        }
    };
    let events = match parse_history(&text) {
        Ok(events) => events,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            println!("RESULT error reason=malformed-history line={}", e.line);
            return 2;
        }
    };
    let report = check(&events);
    println!("{}", report.render());
    if report.is_ok() {
        0
    } else {
        1
    }
}
