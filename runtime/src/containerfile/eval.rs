//! Instructions + context + base configs → [`Plan`], with Docker's ARG/ENV
//! scoping: ARGs before the first FROM are global and only expand FROM lines
//! (a stage re-imports one with a bare `ARG NAME`); ENV wins over ARG.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::exec::{expand_entries, BudBackend};
use super::expand;
use super::glob::{has_meta, match_segment, Ignore};
use super::*;

/// What the command line adds to the Containerfile.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--build-arg NAME=VALUE`: overrides ARG defaults.
    pub build_args: BTreeMap<String, String>,
    /// `--target NAME`: build this stage instead of the last.
    pub target: Option<String>,
}

/// Evaluates `cf` against the build context at `context`. The backend is only
/// asked for base image configs ([`BudBackend::base_image`]); nothing is written.
pub fn plan(
    cf: &Containerfile,
    context: &Path,
    opts: &BuildOptions,
    backend: &mut dyn BudBackend,
) -> Result<Plan, Error> {
    let ctx = Dir::open_ambient_dir(context, ambient_authority()).map_err(|e| Error {
        line: 0,
        kind: ErrorKind::Context,
        message: format!("cannot open build context {}: {e}", context.display()),
    })?;
    let ignore = [".containerignore", ".dockerignore"]
        .iter()
        .find_map(|name| ctx.read_to_string(name).ok())
        .map(|text| Ignore::parse(&text))
        .unwrap_or_default();
    let mut ev = Eval {
        escape: cf.escape,
        ctx,
        ignore,
        opts,
        backend,
        global_args: Vec::new(),
        used_args: BTreeSet::new(),
        stages: Vec::new(),
        warnings: Vec::new(),
    };
    let mut cur: Option<Cur> = None;
    for ins in &cf.instructions {
        match (ins.keyword, &mut cur) {
            (Keyword::From, _) => {
                if let Some(done) = cur.take() {
                    ev.stages.push(done.stage);
                }
                cur = Some(ev.from(ins)?);
            }
            (Keyword::Arg, None) => ev.global_arg(ins)?,
            (_, None) => {
                return Err(fail(
                    ins.line,
                    ErrorKind::Syntax,
                    format!("{:?} before the first FROM", ins.keyword),
                ))
            }
            (_, Some(c)) => ev.apply(c, ins)?,
        }
    }
    let Some(last) = cur else {
        return Err(fail(0, ErrorKind::Syntax, "no FROM instruction"));
    };
    ev.stages.push(last.stage);
    for name in opts.build_args.keys() {
        if !ev.used_args.contains(name) {
            ev.warnings.push(Warning {
                line: 0,
                message: format!("build argument {name} was not consumed by any ARG"),
            });
        }
    }
    let output = match &opts.target {
        None => ev.stages.len() - 1,
        Some(t) => ev
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase()))
            .ok_or_else(|| {
                fail(
                    0,
                    ErrorKind::Reference,
                    format!("target stage {t:?} not found"),
                )
            })?,
    };
    ev.stages.truncate(output + 1);
    Ok(Plan {
        stages: ev.stages,
        output,
        warnings: ev.warnings,
    })
}

fn fail(line: usize, kind: ErrorKind, message: impl Into<String>) -> Error {
    Error {
        line,
        kind,
        message: message.into(),
    }
}

struct Eval<'a> {
    escape: char,
    ctx: Dir,
    ignore: Ignore,
    opts: &'a BuildOptions,
    backend: &'a mut dyn BudBackend,
    global_args: Vec<(String, Option<String>)>,
    used_args: BTreeSet<String>,
    stages: Vec<Stage>,
    warnings: Vec<Warning>,
}

struct Cur {
    stage: Stage,
    /// ARGs declared in this stage; `None` = declared without any value.
    args: Vec<(String, Option<String>)>,
    /// Whether CMD was set in this stage (an ENTRYPOINT only resets an inherited CMD).
    cmd_set: bool,
}

impl Cur {
    fn lookup(&self, name: &str) -> Option<String> {
        if let Some(v) = self.stage.config.env_var(name) {
            return Some(v.to_string());
        }
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
    }
}

fn no_flags(ins: &Instruction) -> Result<(), Error> {
    match ins.flags.first() {
        None => Ok(()),
        Some(f) => Err(fail(
            ins.line,
            ErrorKind::Unsupported,
            format!("{:?}: flag --{} is not supported", ins.keyword, f.name),
        )),
    }
}

fn shell<'i>(ins: &'i Instruction, what: &str) -> Result<&'i str, Error> {
    match &ins.args {
        Args::Shell(s) if !s.is_empty() => Ok(s),
        Args::Shell(_) => Err(fail(
            ins.line,
            ErrorKind::Syntax,
            format!("{what} requires an argument"),
        )),
        Args::Exec(_) => Err(fail(
            ins.line,
            ErrorKind::Syntax,
            format!("{what} does not take the JSON (exec) form"),
        )),
    }
}

/// Lexically cleans an absolute image path (`..` stops at `/`).
fn clean_abs(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Cleans a path relative to a root; `None` if `..` would leave the root.
fn clean_rel(p: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s),
        }
    }
    Some(out.join("/"))
}

fn resolve_in(workdir: Option<&str>, path: &str) -> String {
    if path.starts_with('/') {
        clean_abs(path)
    } else {
        clean_abs(&format!("{}/{path}", workdir.unwrap_or("/")))
    }
}

impl Eval<'_> {
    fn word(
        &self,
        line: usize,
        raw: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, Error> {
        expand::word(raw, env, self.escape).map_err(|m| fail(line, ErrorKind::Expansion, m))
    }

    fn words(
        &self,
        line: usize,
        raw: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, Error> {
        expand::words(raw, env, self.escape).map_err(|m| fail(line, ErrorKind::Expansion, m))
    }

    fn global_lookup(&self, name: &str) -> Option<String> {
        self.global_args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
    }

    /// `ARG a=1 b`: names with optional defaults, raw.
    fn arg_decls(&mut self, ins: &Instruction) -> Result<Vec<(String, Option<String>)>, Error> {
        let raw = shell(ins, "ARG")?;
        let words = expand::split_raw(raw, self.escape)
            .map_err(|m| fail(ins.line, ErrorKind::Syntax, m))?;
        let mut out = Vec::new();
        for w in words {
            let (name, default) = match w.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (w, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(fail(
                    ins.line,
                    ErrorKind::Syntax,
                    format!("ARG: invalid name {name:?}"),
                ));
            }
            out.push((name, default));
        }
        Ok(out)
    }

    fn global_arg(&mut self, ins: &Instruction) -> Result<(), Error> {
        no_flags(ins)?;
        for (name, default) in self.arg_decls(ins)? {
            let default = match default {
                Some(d) => Some(self.word(ins.line, &d, &|n| self.global_lookup(n))?),
                None => None,
            };
            let value = self.opts.build_args.get(&name).cloned().or(default);
            if self.opts.build_args.contains_key(&name) {
                self.used_args.insert(name.clone());
            }
            self.global_args.push((name, value));
        }
        Ok(())
    }

    fn from(&mut self, ins: &Instruction) -> Result<Cur, Error> {
        let line = ins.line;
        for f in &ins.flags {
            if f.name == "platform" {
                self.warnings.push(Warning {
                    line,
                    message: "FROM --platform is ignored (ws2i images are wasm)".into(),
                });
            } else {
                return Err(fail(
                    line,
                    ErrorKind::Unsupported,
                    format!("FROM: flag --{} is not supported", f.name),
                ));
            }
        }
        let raw = shell(ins, "FROM")?;
        let words = self.words(line, raw, &|n| self.global_lookup(n))?;
        let (image, name) = match words.as_slice() {
            [image] => (image.clone(), None),
            [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                (image.clone(), Some(name.to_ascii_lowercase()))
            }
            _ => {
                return Err(fail(
                    line,
                    ErrorKind::Syntax,
                    "FROM takes `image [AS name]`",
                ))
            }
        };
        if image.is_empty() {
            return Err(fail(line, ErrorKind::Syntax, "FROM: empty image name"));
        }
        if let Some(n) = &name {
            let valid = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return Err(fail(
                    line,
                    ErrorKind::Syntax,
                    format!("invalid stage name {n:?}"),
                ));
            }
            if self.stages.iter().any(|s| s.name.as_ref() == Some(n)) {
                return Err(fail(
                    line,
                    ErrorKind::Syntax,
                    format!("duplicate stage name {n:?}"),
                ));
            }
        }
        let lower = image.to_ascii_lowercase();
        let (base, base_config) = if lower == "scratch" {
            (Base::Scratch, ImageConfig::default())
        } else if let Some(i) = self
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(&lower))
        {
            (Base::Stage(i), self.stages[i].config.clone())
        } else {
            let cfg = self.backend.base_image(&image).map_err(|e| {
                fail(
                    line,
                    ErrorKind::Reference,
                    format!("base image {image}: {e:#}"),
                )
            })?;
            (Base::Image(image), cfg)
        };
        Ok(Cur {
            stage: Stage {
                name,
                base,
                config: base_config.clone(),
                base_config,
                steps: Vec::new(),
            },
            args: Vec::new(),
            cmd_set: false,
        })
    }

    /// `K=V K2="v 2"` or legacy `K V W` (value = the rest of the line).
    fn pairs(
        &self,
        ins: &Instruction,
        what: &str,
        cur: &Cur,
    ) -> Result<Vec<(String, String)>, Error> {
        let line = ins.line;
        let raw = shell(ins, what)?;
        let env = |n: &str| cur.lookup(n);
        let words =
            expand::split_raw(raw, self.escape).map_err(|m| fail(line, ErrorKind::Syntax, m))?;
        let mut out = Vec::new();
        if !words[0].contains('=') {
            let (key, rest) = raw.split_once(char::is_whitespace).unwrap_or((raw, ""));
            if rest.trim().is_empty() {
                return Err(fail(
                    line,
                    ErrorKind::Syntax,
                    format!("{what} {key} needs a value (`{what} {key}=value`)"),
                ));
            }
            out.push((
                self.word(line, key, &env)?,
                self.word(line, rest.trim(), &env)?,
            ));
        } else {
            for w in &words {
                let Some((k, v)) = w.split_once('=') else {
                    return Err(fail(
                        line,
                        ErrorKind::Syntax,
                        format!("{what}: can't find = in {w:?}; must be name=value"),
                    ));
                };
                out.push((self.word(line, k, &env)?, self.word(line, v, &env)?));
            }
        }
        if out.iter().any(|(k, _)| k.is_empty()) {
            return Err(fail(line, ErrorKind::Syntax, format!("{what}: empty name")));
        }
        Ok(out)
    }

    fn apply(&mut self, cur: &mut Cur, ins: &Instruction) -> Result<(), Error> {
        let line = ins.line;
        let unsupported = |m: String| Err(fail(line, ErrorKind::Unsupported, m));
        if !matches!(
            ins.keyword,
            Keyword::Copy | Keyword::Add | Keyword::Run | Keyword::Healthcheck
        ) {
            no_flags(ins)?;
        }
        match ins.keyword {
            Keyword::From => unreachable!("FROM starts a stage"),
            Keyword::Arg => {
                for (name, default) in self.arg_decls(ins)? {
                    let default = match default {
                        Some(d) => Some(self.word(line, &d, &|n| cur.lookup(n))?),
                        None => None,
                    };
                    if self.opts.build_args.contains_key(&name) {
                        self.used_args.insert(name.clone());
                    }
                    let value = self
                        .opts
                        .build_args
                        .get(&name)
                        .cloned()
                        .or(default)
                        .or_else(|| self.global_lookup(&name));
                    cur.args.push((name, value));
                }
            }
            Keyword::Env => {
                for (k, v) in self.pairs(ins, "ENV", cur)? {
                    cur.stage.config.set_env(&k, v);
                }
            }
            Keyword::Label => {
                for (k, v) in self.pairs(ins, "LABEL", cur)? {
                    cur.stage.config.labels.insert(k, v);
                }
            }
            Keyword::Maintainer => {
                let who = shell(ins, "MAINTAINER")?.to_string();
                self.warnings.push(Warning {
                    line,
                    message: "MAINTAINER is deprecated; recorded as the image author".into(),
                });
                cur.stage.config.author = Some(who);
            }
            Keyword::Workdir => {
                let p = self.word(line, shell(ins, "WORKDIR")?, &|n| cur.lookup(n))?;
                let path = resolve_in(cur.stage.config.workdir.as_deref(), &p);
                cur.stage.config.workdir = Some(path.clone());
                cur.stage.steps.push(Step::Workdir { line, path });
            }
            Keyword::User => {
                let u = self.word(line, shell(ins, "USER")?, &|n| cur.lookup(n))?;
                if u.is_empty() {
                    return Err(fail(line, ErrorKind::Syntax, "USER: empty user"));
                }
                cur.stage.config.user = Some(u);
            }
            Keyword::Expose => {
                for p in self.words(line, shell(ins, "EXPOSE")?, &|n| cur.lookup(n))? {
                    let port = expose(&p).ok_or_else(|| {
                        fail(
                            line,
                            ErrorKind::Syntax,
                            format!("EXPOSE: invalid port {p:?} (want PORT[-PORT][/tcp|udp|sctp])"),
                        )
                    })?;
                    cur.stage.config.exposed_ports.insert(port);
                }
            }
            Keyword::Cmd | Keyword::Entrypoint => {
                let argv = match &ins.args {
                    Args::Exec(v) => v.clone(),
                    Args::Shell(s) => {
                        self.warnings.push(Warning {
                            line,
                            message: format!(
                                "{:?} in shell form becomes [\"/bin/sh\", \"-c\", ...], which needs a shell in the image; prefer the JSON form",
                                ins.keyword
                            ),
                        });
                        vec!["/bin/sh".into(), "-c".into(), s.clone()]
                    }
                };
                if ins.keyword == Keyword::Cmd {
                    cur.stage.config.cmd = Some(argv);
                    cur.cmd_set = true;
                } else {
                    cur.stage.config.entrypoint = Some(argv);
                    if !cur.cmd_set {
                        cur.stage.config.cmd = None;
                    }
                }
            }
            Keyword::Volume => {
                let vols = match &ins.args {
                    Args::Exec(v) => v.clone(),
                    Args::Shell(s) => self.words(line, s, &|n| cur.lookup(n))?,
                };
                if vols.is_empty() || vols.iter().any(String::is_empty) {
                    return Err(fail(
                        line,
                        ErrorKind::Syntax,
                        "VOLUME requires non-empty paths",
                    ));
                }
                cur.stage
                    .config
                    .volumes
                    .extend(vols.iter().map(|v| clean_abs(v)));
            }
            Keyword::StopSignal => {
                let s = self.word(line, shell(ins, "STOPSIGNAL")?, &|n| cur.lookup(n))?;
                cur.stage.config.stop_signal = Some(s);
            }
            Keyword::Healthcheck => match &ins.args {
                Args::Shell(s) if s.eq_ignore_ascii_case("none") && ins.flags.is_empty() => {
                    self.warnings.push(Warning {
                        line,
                        message: "HEALTHCHECK NONE ignored".into(),
                    });
                }
                _ => {
                    return unsupported(
                        "HEALTHCHECK runs a native command; ws2i images have none".into(),
                    )
                }
            },
            Keyword::Onbuild => return unsupported("ONBUILD is not supported by ws2i bud".into()),
            Keyword::Shell => {
                return unsupported("SHELL is not supported: ws2i runs no shell".into())
            }
            Keyword::Run => {
                if let Some(f) = ins.flags.first() {
                    return unsupported(format!("RUN --{} is not supported", f.name));
                }
                let argv = match &ins.args {
                    Args::Exec(v) if !v.is_empty() && !v[0].is_empty() => v.clone(),
                    Args::Exec(_) => return Err(fail(line, ErrorKind::Syntax, "RUN needs a program")),
                    Args::Shell(_) => {
                        return unsupported(
                            "shell-form RUN is refused: ws2i runs no native programs. Use the exec form with a WASI module \
                             from the image, e.g. RUN [\"/usr/libexec/tool.wasm\", \"arg\"], or COPY --chmod for files"
                                .into(),
                        )
                    }
                };
                let workdir = cur
                    .stage
                    .config
                    .workdir
                    .clone()
                    .unwrap_or_else(|| "/".into());
                let mut argv = argv;
                argv[0] = resolve_in(Some(&workdir), &argv[0]);
                let mut env = cur.stage.config.env.clone();
                for (k, v) in &cur.args {
                    if let (Some(v), None) = (v, env.iter().find(|(e, _)| e == k)) {
                        env.push((k.clone(), v.clone()));
                    }
                }
                cur.stage.steps.push(Step::Run(RunStep {
                    line,
                    argv,
                    env,
                    workdir,
                    user: cur.stage.config.user.clone(),
                }));
            }
            Keyword::Copy | Keyword::Add => {
                let step = self.copy(cur, ins)?;
                cur.stage.steps.push(Step::Copy(step));
            }
        }
        Ok(())
    }

    fn copy(&mut self, cur: &Cur, ins: &Instruction) -> Result<CopyStep, Error> {
        let line = ins.line;
        let what = if ins.keyword == Keyword::Add {
            "ADD"
        } else {
            "COPY"
        };
        let env = |n: &str| cur.lookup(n);
        let (mut from, mut chmod, mut chown) = (None, None, None);
        for f in &ins.flags {
            let value = f.value.as_deref().ok_or_else(|| {
                fail(
                    line,
                    ErrorKind::Syntax,
                    format!("{what}: --{} needs a value", f.name),
                )
            })?;
            let value = self.word(line, value, &env)?;
            match f.name.as_str() {
                "from" if what == "COPY" => from = Some(value),
                "chmod" => {
                    let mode = (!value.is_empty() && value.len() <= 4)
                        .then(|| u32::from_str_radix(&value, 8).ok())
                        .flatten()
                        .ok_or_else(|| {
                            fail(
                                line,
                                ErrorKind::Syntax,
                                format!("{what}: --chmod={value}: want an octal mode such as 0755"),
                            )
                        })?;
                    chmod = Some(mode);
                }
                "chown" => {
                    let (user, group) = match value.split_once(':') {
                        Some((u, g)) => (u.to_string(), Some(g.to_string())),
                        None => (value.clone(), None),
                    };
                    if user.is_empty() || group.as_deref() == Some("") {
                        return Err(fail(
                            line,
                            ErrorKind::Syntax,
                            format!("{what}: --chown={value}: want USER[:GROUP]"),
                        ));
                    }
                    chown = Some(Chown { user, group });
                }
                other => {
                    return Err(fail(
                        line,
                        ErrorKind::Unsupported,
                        format!("{what}: flag --{other} is not supported"),
                    ))
                }
            }
        }
        let mut args = match &ins.args {
            Args::Exec(v) => v
                .iter()
                .map(|w| self.word(line, w, &env))
                .collect::<Result<Vec<_>, _>>()?,
            Args::Shell(s) => self.words(line, s, &env)?,
        };
        if args.len() < 2 {
            return Err(fail(
                line,
                ErrorKind::Syntax,
                format!("{what} requires at least one source and a destination"),
            ));
        }
        let dest_raw = args.pop().unwrap_or_default();
        let dest_slash = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
        let dest = resolve_in(cur.stage.config.workdir.as_deref(), &dest_raw);
        let dest_is_dir = |n: usize| -> Result<bool, Error> {
            if n > 1 && !dest_slash {
                return Err(fail(
                    line,
                    ErrorKind::Syntax,
                    format!("{what} with more than one source needs a directory destination ending in / (got {dest_raw:?})"),
                ));
            }
            Ok(dest_slash || n > 1)
        };
        for s in &args {
            if s.contains("://") || s.starts_with("git@") {
                return Err(fail(
                    line,
                    ErrorKind::Unsupported,
                    format!("{what} of a URL ({s}) is not supported: fetch it into the build context first"),
                ));
            }
        }
        let source = match from {
            Some(f) => {
                if args.iter().any(|s| has_meta(s)) {
                    return Err(fail(
                        line,
                        ErrorKind::Unsupported,
                        format!("{what} --from: glob sources are not supported"),
                    ));
                }
                let paths: Vec<String> = args.iter().map(|s| clean_abs(s)).collect();
                let lower = f.to_ascii_lowercase();
                let earlier = self
                    .stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(&lower))
                    .or_else(|| f.parse::<usize>().ok().filter(|i| *i < self.stages.len()));
                if cur.stage.name.as_deref() == Some(&lower) {
                    return Err(fail(
                        line,
                        ErrorKind::Reference,
                        format!("{what} --from={f}: a stage cannot copy from itself"),
                    ));
                }
                match earlier {
                    Some(stage) => CopySource::Stage { stage, paths },
                    None if f.chars().all(|c| c.is_ascii_digit()) => {
                        return Err(fail(
                            line,
                            ErrorKind::Reference,
                            format!("{what} --from={f}: no such earlier stage"),
                        ))
                    }
                    None => CopySource::Image {
                        reference: f,
                        paths,
                    },
                }
            }
            None => {
                let mut rels = Vec::new();
                for s in &args {
                    let rel = clean_rel(s.trim_start_matches('/')).ok_or_else(|| {
                        fail(
                            line,
                            ErrorKind::Context,
                            format!("{what} {s}: path is outside the build context"),
                        )
                    })?;
                    if has_meta(&rel) {
                        let before = rels.len();
                        self.glob(&rel, &mut rels);
                        if rels.len() == before {
                            return Err(fail(
                                line,
                                ErrorKind::Context,
                                format!("{what} {s}: no file in the build context matches"),
                            ));
                        }
                    } else {
                        if self.ignore.is_excluded(&rel) {
                            return Err(fail(
                                line,
                                ErrorKind::Context,
                                format!("{what} {s}: excluded by .containerignore/.dockerignore"),
                            ));
                        }
                        let probe = if rel.is_empty() { "." } else { rel.as_str() };
                        if let Err(e) = self.ctx.metadata(probe) {
                            return Err(fail(
                                line,
                                ErrorKind::Context,
                                format!("{what} {s}: not found in the build context (or it leads outside it): {e}"),
                            ));
                        }
                        rels.push(rel);
                    }
                }
                let is_dir = dest_is_dir(rels.len())?;
                let mut entries = Vec::new();
                for rel in &rels {
                    entries.extend(
                        expand_entries(&self.ctx, rel, &dest, is_dir, Some(&self.ignore)).map_err(
                            |e| fail(line, ErrorKind::Context, format!("{what} {rel}: {e:#}")),
                        )?,
                    );
                }
                if what == "ADD" {
                    self.refuse_archives(line, &entries)?;
                }
                return Ok(CopyStep {
                    line,
                    source: CopySource::Context(entries),
                    dest,
                    dest_is_dir: is_dir,
                    chmod,
                    chown,
                });
            }
        };
        let n = match &source {
            CopySource::Stage { paths, .. } | CopySource::Image { paths, .. } => paths.len(),
            CopySource::Context(_) => 0,
        };
        Ok(CopyStep {
            line,
            source,
            dest,
            dest_is_dir: dest_is_dir(n)?,
            chmod,
            chown,
        })
    }

    /// ADD would auto-extract local archives; ws2i does not (yet), and
    /// silently copying the archive instead would build a different image.
    fn refuse_archives(&self, line: usize, entries: &[Entry]) -> Result<(), Error> {
        use std::io::Read;
        for e in entries.iter().filter(|e| e.kind == EntryKind::File) {
            let mut head = [0u8; 262];
            let n = self
                .ctx
                .open(&e.src)
                .and_then(|mut f| f.read(&mut head))
                .unwrap_or(0);
            let head = &head[..n];
            let archive = head.starts_with(&[0x1f, 0x8b])
                || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
                || head.starts_with(b"BZh")
                || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
                || head.get(257..262) == Some(b"ustar");
            if archive {
                return Err(fail(
                    line,
                    ErrorKind::Unsupported,
                    format!("ADD {}: auto-extracting archives is not supported; unpack it in the context and COPY the tree", e.src.display()),
                ));
            }
        }
        Ok(())
    }

    /// Context paths matching `pattern` segment by segment, sorted, not ignored.
    fn glob(&self, pattern: &str, out: &mut Vec<String>) {
        let segs: Vec<&str> = pattern.split('/').collect();
        let mut found = Vec::new();
        glob_walk(&self.ctx, String::new(), &segs, &mut found);
        found.sort();
        out.extend(found.into_iter().filter(|p| !self.ignore.is_excluded(p)));
    }
}

fn glob_walk(dir: &Dir, base: String, segs: &[&str], out: &mut Vec<String>) {
    let Some((seg, rest)) = segs.split_first() else {
        out.push(base);
        return;
    };
    let join = |name: &str| {
        if base.is_empty() {
            name.to_string()
        } else {
            format!("{base}/{name}")
        }
    };
    if !has_meta(seg) {
        let p = join(seg);
        if dir.symlink_metadata(&p).is_ok() {
            glob_walk(dir, p, rest, out);
        }
        return;
    }
    let listing = dir.read_dir(if base.is_empty() { "." } else { base.as_str() });
    let Ok(listing) = listing else { return };
    let mut names: Vec<String> = listing
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names.iter().filter(|n| match_segment(seg, n)) {
        let p = join(name);
        if rest.is_empty() || dir.metadata(&p).is_ok_and(|m| m.is_dir()) {
            glob_walk(dir, p, rest, out);
        }
    }
}

/// `8080` → `8080/tcp`; `53/UDP` → `53/udp`; ranges `8000-8010/tcp`.
fn expose(p: &str) -> Option<String> {
    let (ports, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    let valid = |s: &str| s.parse::<u16>().is_ok_and(|n| n > 0);
    let ok = match ports.split_once('-') {
        Some((a, b)) => valid(a) && valid(b) && a.parse::<u16>().ok() <= b.parse::<u16>().ok(),
        None => valid(ports),
    };
    ok.then(|| format!("{ports}/{proto}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(clean_abs("/a/../../b/./c/"), "/b/c");
        assert_eq!(clean_rel("a/../b"), Some("b".into()));
        assert_eq!(clean_rel("a/../../b"), None);
        assert_eq!(resolve_in(Some("/app"), "x/../y"), "/app/y");
        assert_eq!(resolve_in(None, "."), "/");
    }

    #[test]
    fn ports() {
        assert_eq!(expose("8080").as_deref(), Some("8080/tcp"));
        assert_eq!(expose("53/UDP").as_deref(), Some("53/udp"));
        assert_eq!(expose("8000-8010").as_deref(), Some("8000-8010/tcp"));
        assert_eq!(expose("0"), None);
        assert_eq!(expose("70000"), None);
        assert_eq!(expose("80/xyz"), None);
        assert_eq!(expose("9-8"), None);
    }
}
