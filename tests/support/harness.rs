//! The harness of the test files that need a tool from outside Cargo
//! (`redis-server`, Node.js, chromium, nginx, network namespaces): they are
//! `harness = false` in Cargo.toml, and their `main` lists their tests,
//! each with what it needs (`#[path = "support/harness.rs"] mod harness;`).
//!
//! A test whose tool is missing is not run: it is reported
//! `ignored (<what is missing, and how to install it>)` and counted as
//! ignored in the summary line, never as passed. Under `CI=true` it fails
//! instead, naming the tool (`.ci/run` installs them all).
//!
//! Each test runs as libtest would run it: on a thread of its own named
//! after it, in the Tokio runtime its `#[tokio::test]` attribute built (the
//! flavor and worker threads matter to some tests). Filters, `--exact`,
//! `--skip`, `--ignored`, `--include-ignored`, `--list` and
//! `--test-threads` (or `RUST_TEST_THREADS`) work as with libtest
//! (through `libtest-mimic`); output is not captured.

use std::future::Future;
use std::pin::Pin;
use std::process::{Command, ExitCode, Stdio};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Something a test needs from outside Cargo.
#[derive(Clone, Copy)]
pub struct Need {
    /// The tool, as the failure under `CI=true` names it.
    pub tool: &'static str,
    /// `Ok(())` when it is there; else what is missing and how to install
    /// it.
    pub check: fn() -> Result<(), String>,
}

/// A `redis-server` binary on `PATH`.
pub const REDIS_SERVER: Need = Need {
    tool: "redis-server",
    check: || runs("redis-server", "apt-get install redis-server"),
};

/// Whether `program --version` can be started; else why not, with `install`.
pub fn runs(program: &str, install: &str) -> Result<(), String> {
    match Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{program} not found ({install})"))
        }
        Err(e) => Err(format!("{program} cannot be run: {e} ({install})")),
    }
}

/// `name` in a directory of `PATH`.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// Whether a missing tool is a failure (`CI=true`).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

type Body = Box<dyn FnOnce() + Send>;

/// One test: its name (the function's, so filters work as before), what it
/// needs, and its body.
pub struct Test {
    name: &'static str,
    needs: Vec<Need>,
    ignored: bool,
    body: Body,
}

impl Test {
    /// A plain `#[test]`.
    pub fn plain(name: &'static str, body: fn()) -> Self {
        Self::new(name, body)
    }

    /// `#[tokio::test]`: a current-thread runtime.
    pub fn current_thread<F>(name: &'static str, body: fn() -> F) -> Self
    where
        F: Future<Output = ()> + 'static,
    {
        Self::new(name, move || {
            block_on(tokio::runtime::Builder::new_current_thread(), body)
        })
    }

    /// `#[tokio::test(flavor = "multi_thread", worker_threads = <workers>)]`.
    pub fn multi_thread<F>(name: &'static str, workers: usize, body: fn() -> F) -> Self
    where
        F: Future<Output = ()> + 'static,
    {
        Self::new(name, move || {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(workers);
            block_on(builder, body)
        })
    }

    fn new(name: &'static str, body: impl FnOnce() + Send + 'static) -> Self {
        Self {
            name,
            needs: Vec::new(),
            ignored: false,
            body: Box::new(body),
        }
    }

    /// Runs only if `need` is met (else ignored, or failed under `CI=true`).
    pub fn needs(mut self, need: Need) -> Self {
        self.needs.push(need);
        self
    }

    /// `#[ignore]`: runs with `--ignored` or `--include-ignored` only.
    pub fn ignore(mut self) -> Self {
        self.ignored = true;
        self
    }

    fn trial(self) -> Trial {
        let Self {
            name,
            needs,
            ignored,
            body,
        } = self;
        Trial::ignorable_test(name, move || {
            let missing: Vec<(&str, String)> = needs
                .iter()
                .filter_map(|need| (need.check)().err().map(|why| (need.tool, why)))
                .collect();
            if !missing.is_empty() {
                let tools: Vec<&str> = missing.iter().map(|(tool, _)| *tool).collect();
                let why: Vec<String> = missing.into_iter().map(|(_, why)| why).collect();
                let why = why.join("; ");
                if required() {
                    return Err(Failed::from(format!(
                        "not run, and CI=true requires {}: {why}",
                        tools.join(" and ")
                    )));
                }
                return Ok(Completion::ignored_with(why));
            }
            // A thread of its own, named after the test, as libtest runs
            // it: a panic names the test, and whatever the body does to its
            // thread (a network namespace joined) ends with it.
            let thread = std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(body)
                .expect("spawn the test's thread");
            match thread.join() {
                Ok(()) => Ok(Completion::Completed),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
        .with_ignored_flag(ignored)
    }
}

/// What `#[tokio::test]` does with its runtime builder.
fn block_on<F>(mut builder: tokio::runtime::Builder, body: fn() -> F)
where
    F: Future<Output = ()> + 'static,
{
    let body: Pin<Box<dyn Future<Output = ()>>> = Box::pin(body());
    builder
        .enable_all()
        .build()
        .expect("Failed building the Runtime")
        .block_on(body);
}

/// Runs `tests` as the command line says (libtest's arguments); the exit
/// code for `main`.
pub fn run(tests: Vec<Test>) -> ExitCode {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|n| n.parse().ok());
    }
    let trials = tests.into_iter().map(Test::trial).collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// A [`Test`] named after its function: `test!(name)` for a `#[test]`,
/// `test!(name, current_thread)` for a `#[tokio::test]`, and
/// `test!(name, multi_thread(2))` for
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`.
macro_rules! test {
    ($body:ident) => {
        $crate::harness::Test::plain(stringify!($body), $body)
    };
    ($body:ident, current_thread) => {
        $crate::harness::Test::current_thread(stringify!($body), $body)
    };
    ($body:ident, multi_thread($workers:expr)) => {
        $crate::harness::Test::multi_thread(stringify!($body), $workers, $body)
    };
}
pub(crate) use test;
