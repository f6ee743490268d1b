//! Records the git commit the simulator is built from as `SEEDLOG_BUILD_COMMIT` (with `-dirty`
//! when tracked files differ from it), which `run --json` writes into every seed's record.
//! Without git (a source tarball) it is `unknown`, and `$SEEDLOG_COMMIT` at run time names it.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

fn main() {
    // Run again when HEAD or its branch moves (a commit, a checkout) or the sources change.
    let mut watched = vec!["build.rs".to_string(), "src".into(), "../src".into()];
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watched.push(format!("{dir}/HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        watched.push(format!("{common}/packed-refs"));
        if let Some(branch) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]) {
            watched.push(format!("{common}/{branch}"));
        }
    }
    for path in watched.iter().filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(rev) => {
            // --no-optional-locks: `status` must not rewrite the index while cargo watches.
            let changes = git(&[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ]);
            match changes {
                Some(c) if c.is_empty() => rev,
                _ => format!("{rev}-dirty"),
            }
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=SEEDLOG_BUILD_COMMIT={commit}");
}
