//! `ws2i::containerfile` end to end: parse + plan + execute on `DirBackend`
//! (a directory tree per stage), including hostile build contexts.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use ws2i::containerfile::{
    execute, plan, Base, BuildOptions, Containerfile, CopySource, DirBackend, Error, ErrorKind,
    ImageConfig, Plan, Step,
};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/containerfiles")
        .join(name)
}

/// A backend with one base image, `ws2i/base:latest`, holding /etc/passwd.
fn backend(root: &Path) -> DirBackend {
    let rootfs = root.join("base-rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0::/root:/sbin/nologin\n",
    )
    .unwrap();
    let config = ImageConfig {
        env: vec![
            ("PATH".into(), "/usr/bin".into()),
            ("HOME".into(), "/root".into()),
        ],
        cmd: Some(vec!["/usr/bin/base-usage".into()]),
        ..Default::default()
    };
    let mut b = DirBackend::new(&root.join("stages"));
    b.add_base("ws2i/base:latest", config, &rootfs);
    b
}

fn plan_text(
    text: &str,
    context: &Path,
    opts: &BuildOptions,
    b: &mut DirBackend,
) -> Result<Plan, Error> {
    plan(&Containerfile::parse(text)?, context, opts, b)
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn golang_builder_plans_and_builds() {
    let ctx = example("golang-builder");
    let tmp = tempfile::tempdir().unwrap();
    let mut b = backend(tmp.path());
    let text = fs::read_to_string(ctx.join("Containerfile")).unwrap();
    let p = plan_text(&text, &ctx, &BuildOptions::default(), &mut b).unwrap();

    assert_eq!(p.stages.len(), 1);
    let st = &p.stages[0];
    assert_eq!(st.base, Base::Image("ws2i/base:latest".into()));
    let c = &st.config;
    assert_eq!(c.env_var("VERSION"), Some("1.22.3"));
    assert_eq!(c.env_var("PATH"), Some("/usr/bin"), "base env is inherited");
    assert_eq!(
        c.env_var("DESCRIPTION"),
        Some("Go toolchain as WebAssembly hooks: assemble compiles, run starts the result.")
    );
    assert_eq!(
        c.labels["io.openshift.s2i.scripts-url"],
        "image:///usr/libexec/s2i"
    );
    assert_eq!(c.labels["io.openshift.tags"], "builder,golang,golang122");
    assert_eq!(c.labels["io.k8s.display-name"], "Go 1.22.3");
    assert_eq!(c.labels["name"], "ws2i/go-toolset");
    assert_eq!(c.user.as_deref(), Some("1001"));
    assert_eq!(c.workdir.as_deref(), Some("/opt/app-root/src"));
    assert!(c.exposed_ports.contains("8080/tcp"));
    assert_eq!(
        c.cmd.as_deref().unwrap()[2],
        "$STI_SCRIPTS_PATH/usage",
        "CMD is not expanded, like Docker"
    );
    let cmd_line = text.lines().position(|l| l.starts_with("CMD")).unwrap() + 1;
    assert!(
        p.warnings.iter().any(|w| w.line == cmd_line),
        "{:?}",
        p.warnings
    );

    let Step::Copy(scripts) = &st.steps[0] else {
        panic!("{:?}", st.steps[0])
    };
    assert_eq!(scripts.dest, "/usr/libexec/s2i");
    assert_eq!(scripts.chmod, Some(0o755));
    let CopySource::Context(entries) = &scripts.source else {
        panic!()
    };
    let dests: Vec<&str> = entries.iter().map(|e| e.dest.as_str()).collect();
    assert_eq!(
        dests,
        [
            "/usr/libexec/s2i",
            "/usr/libexec/s2i/assemble",
            "/usr/libexec/s2i/run",
            "/usr/libexec/s2i/usage"
        ]
    );

    execute(&p, &ctx, &mut b).unwrap();
    let root = b.stage_dir(0).unwrap().to_path_buf();
    assert!(
        root.join("etc/passwd").is_file(),
        "base rootfs is the starting point"
    );
    for hook in ["assemble", "run", "usage"] {
        let f = root.join("usr/libexec/s2i").join(hook);
        assert_eq!(fs::read(&f).unwrap(), b"\0asm\x01\0\0\0");
        assert_eq!(mode(&f), 0o755);
    }
    assert_eq!(
        fs::read_to_string(root.join("opt/app-root/etc/go.env")).unwrap(),
        "GOFLAGS=-mod=vendor\n"
    );
    assert!(
        root.join("opt/app-root/src").is_dir(),
        "WORKDIR creates its directory"
    );
    assert!(
        !root.join("README.md").exists(),
        ".containerignore is honoured"
    );
    let owner = &b.owners[&(0, "/usr/libexec/s2i/run".to_string())];
    assert_eq!(
        (owner.user.as_str(), owner.group.as_deref()),
        ("1001", Some("0"))
    );
    assert_eq!(b.committed[&0], *c);
}

#[test]
fn shell_form_run_is_refused_with_its_line() {
    let ctx = example("golang-builder");
    let tmp = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(ctx.join("Containerfile"))
        .unwrap()
        .replace(
            "EXPOSE 8080\n",
            "EXPOSE 8080\nRUN microdnf install -y go-toolset && \\\n    microdnf clean all -y\n",
        );
    let line = text.lines().position(|l| l.starts_with("RUN")).unwrap() + 1;
    let e = plan_text(
        &text,
        &ctx,
        &BuildOptions::default(),
        &mut backend(tmp.path()),
    )
    .unwrap_err();
    assert_eq!((e.line, e.kind), (line, ErrorKind::Unsupported));
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("line {line}")) && msg.contains("shell-form RUN"),
        "{msg}"
    );
}

#[test]
fn every_error_names_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(ctx.join("d")).unwrap();
    fs::write(ctx.join("a.wasm"), "a").unwrap();
    fs::write(ctx.join("b.wasm"), "b").unwrap();
    let mut tar = vec![0u8; 512];
    tar[257..262].copy_from_slice(b"ustar");
    fs::write(ctx.join("x.tar"), &tar).unwrap();
    fs::write(ctx.join("y.tar.gz"), "y").unwrap();
    fs::write(ctx.join(".containerignore"), "*.tar.gz\n").unwrap();
    let cases: &[(&str, usize, ErrorKind, &str)] = &[
        (
            "COPY a.wasm /\n",
            1,
            ErrorKind::Syntax,
            "before the first FROM",
        ),
        ("# only comments\n", 0, ErrorKind::Syntax, "no FROM"),
        (
            "FROM scratch\nBOGUS x\n",
            2,
            ErrorKind::Syntax,
            "unknown instruction",
        ),
        ("FROM\n", 1, ErrorKind::Syntax, "requires an argument"),
        ("FROM a b c d\n", 1, ErrorKind::Syntax, "image [AS name]"),
        (
            "FROM scratch AS 1x\n",
            1,
            ErrorKind::Syntax,
            "invalid stage name",
        ),
        (
            "FROM scratch AS a\nFROM scratch AS A\n",
            2,
            ErrorKind::Syntax,
            "duplicate stage",
        ),
        ("FROM nothere:1\n", 1, ErrorKind::Reference, "nothere:1"),
        (
            "FROM scratch\nRUN echo hi\n",
            2,
            ErrorKind::Unsupported,
            "shell-form RUN",
        ),
        (
            "FROM scratch\nRUN --mount=type=cache x\n",
            2,
            ErrorKind::Unsupported,
            "--mount",
        ),
        (
            "FROM scratch\nRUN []\n",
            2,
            ErrorKind::Syntax,
            "needs a program",
        ),
        (
            "FROM scratch\nENV\n",
            2,
            ErrorKind::Syntax,
            "requires an argument",
        ),
        (
            "FROM scratch\nENV A=1 B\n",
            2,
            ErrorKind::Syntax,
            "can't find =",
        ),
        (
            "FROM scratch\nENV A\n",
            2,
            ErrorKind::Syntax,
            "needs a value",
        ),
        (
            "FROM scratch\nENV A=\"x\n",
            2,
            ErrorKind::Syntax,
            "unterminated",
        ),
        (
            "FROM scratch\nLABEL =x\n",
            2,
            ErrorKind::Syntax,
            "empty name",
        ),
        (
            "FROM scratch\nARG a-b\n",
            2,
            ErrorKind::Syntax,
            "invalid name",
        ),
        (
            "FROM scratch\nENV A=\"${B:?B is required}\"\n",
            2,
            ErrorKind::Expansion,
            "B is required",
        ),
        (
            "FROM scratch\nUSER ${NOPE}\n",
            2,
            ErrorKind::Syntax,
            "empty user",
        ),
        (
            "FROM scratch\nEXPOSE 80/http\n",
            2,
            ErrorKind::Syntax,
            "invalid port",
        ),
        (
            "FROM scratch\nWORKDIR [\"/a\"]\n",
            2,
            ErrorKind::Syntax,
            "JSON",
        ),
        (
            "FROM scratch\nHEALTHCHECK CMD [\"x\"]\n",
            2,
            ErrorKind::Unsupported,
            "HEALTHCHECK",
        ),
        (
            "FROM scratch\nONBUILD COPY a /\n",
            2,
            ErrorKind::Unsupported,
            "ONBUILD",
        ),
        (
            "FROM scratch\nSHELL [\"/bin/bash\"]\n",
            2,
            ErrorKind::Unsupported,
            "SHELL",
        ),
        (
            "FROM scratch\nCOPY a.wasm\n",
            2,
            ErrorKind::Syntax,
            "at least one source",
        ),
        (
            "FROM scratch\nCOPY a.wasm b.wasm /dst\n",
            2,
            ErrorKind::Syntax,
            "ending in /",
        ),
        (
            "FROM scratch\nCOPY *.wasm /dst\n",
            2,
            ErrorKind::Syntax,
            "ending in /",
        ),
        (
            "FROM scratch\nCOPY --chmod=rwx a.wasm /\n",
            2,
            ErrorKind::Syntax,
            "octal",
        ),
        (
            "FROM scratch\nCOPY --chmod=99 a.wasm /\n",
            2,
            ErrorKind::Syntax,
            "octal",
        ),
        (
            "FROM scratch\nCOPY --chown=:0 a.wasm /\n",
            2,
            ErrorKind::Syntax,
            "USER[:GROUP]",
        ),
        (
            "FROM scratch\nCOPY --link a.wasm /\n",
            2,
            ErrorKind::Syntax,
            "needs a value",
        ),
        (
            "FROM scratch\nCOPY --parents=true a.wasm /\n",
            2,
            ErrorKind::Unsupported,
            "--parents",
        ),
        (
            "FROM scratch\nADD --from=x a.wasm /\n",
            2,
            ErrorKind::Unsupported,
            "--from",
        ),
        (
            "FROM scratch\nCOPY missing /\n",
            2,
            ErrorKind::Context,
            "not found",
        ),
        (
            "FROM scratch\nCOPY *.go /\n",
            2,
            ErrorKind::Context,
            "no file",
        ),
        (
            "FROM scratch\nCOPY ../etc/passwd /\n",
            2,
            ErrorKind::Context,
            "outside the build context",
        ),
        (
            "FROM scratch\nCOPY d/../../x /\n",
            2,
            ErrorKind::Context,
            "outside the build context",
        ),
        (
            "FROM scratch\nADD https://example.com/x /\n",
            2,
            ErrorKind::Unsupported,
            "URL",
        ),
        (
            "FROM scratch\nCOPY http://example.com/x /\n",
            2,
            ErrorKind::Unsupported,
            "URL",
        ),
        (
            "FROM scratch\nADD x.tar /\n",
            2,
            ErrorKind::Unsupported,
            "archives",
        ),
        (
            "FROM scratch\nCOPY y.tar.gz /\n",
            2,
            ErrorKind::Context,
            "excluded",
        ),
        (
            "FROM scratch\nCOPY *.gz /\n",
            2,
            ErrorKind::Context,
            "no file",
        ),
        (
            "FROM scratch AS a\nCOPY --from=a a.wasm /\n",
            2,
            ErrorKind::Reference,
            "itself",
        ),
        (
            "FROM scratch\nCOPY --from=3 /a /\n",
            2,
            ErrorKind::Reference,
            "no such earlier stage",
        ),
        (
            "FROM scratch\nCOPY --from=a /x* /\n",
            2,
            ErrorKind::Unsupported,
            "glob",
        ),
        (
            "FROM scratch\n\n\nCOPY \\\n  nope /\n",
            4,
            ErrorKind::Context,
            "nope",
        ),
    ];
    for (text, line, kind, needle) in cases {
        let e = plan_text(
            text,
            &ctx,
            &BuildOptions::default(),
            &mut backend(tmp.path()),
        )
        .unwrap_err();
        assert_eq!((e.line, e.kind), (*line, *kind), "{text:?} → {e}");
        assert!(
            e.to_string().contains(needle),
            "{text:?} → {e} (wanted {needle:?})"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("Containerfile line {line}:")),
            "{e}"
        );
    }
    let e = plan_text(
        "FROM scratch\n",
        &ctx,
        &BuildOptions {
            target: Some("nope".into()),
            ..Default::default()
        },
        &mut backend(tmp.path()),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Reference);
}

#[test]
fn env_and_arg_scoping_like_docker() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("tool.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let text = r#"
ARG TAG=latest
ARG UNUSED_GLOBAL=g
FROM ws2i/base:${TAG} AS first
# Docker's docs: all pairs of one ENV see the values from before it.
ENV abc=hello
ENV abc=bye def=$abc
ENV ghi=$abc
ENV legacy a value with  spaces
ARG TAG
ARG V=${abc}-arg
ENV fromarg=$V tag=$TAG unused=${UNUSED_GLOBAL:-none}
ARG abc=shadowed
ENV stillenv=$abc
LABEL "quoted key"="v" plain=x\ y single='$abc'
ENTRYPOINT ["/bin/tool.wasm"]
COPY tool.wasm /
RUN ["tool.wasm", "$abc"]

FROM first
CMD ["again"]
"#;
    let opts = BuildOptions {
        build_args: [
            ("TAG".to_string(), "latest".to_string()),
            ("EXTRA".to_string(), "1".to_string()),
        ]
        .into(),
        target: Some("first".into()),
    };
    let mut b = backend(tmp.path());
    let p = plan_text(text, &ctx, &opts, &mut b).unwrap();
    assert_eq!(p.output, 0, "--target picks the stage");
    assert_eq!(p.stages.len(), 1);
    let c = &p.stages[0].config;
    let env = |k| c.env_var(k).unwrap();
    assert_eq!(
        (env("abc"), env("def"), env("ghi")),
        ("bye", "hello", "bye")
    );
    assert_eq!(env("legacy"), "a value with  spaces");
    assert_eq!(
        (env("fromarg"), env("tag"), env("unused")),
        ("bye-arg", "latest", "none")
    );
    assert_eq!(env("stillenv"), "bye", "ENV wins over ARG");
    assert_eq!(c.labels["quoted key"], "v");
    assert_eq!(c.labels["plain"], "x y");
    assert_eq!(c.labels["single"], "$abc");
    assert_eq!(c.cmd, None, "ENTRYPOINT resets the inherited CMD");
    assert!(c.env_var("V").is_none(), "ARGs are not persisted");
    let Step::Run(run) = &p.stages[0].steps[1] else {
        panic!("{:?}", p.stages[0].steps)
    };
    assert_eq!(
        run.argv,
        ["/tool.wasm", "$abc"],
        "exec form is literal; relative program resolved against WORKDIR"
    );
    assert!(
        run.env.contains(&("V".into(), "bye-arg".into())),
        "RUN sees ARGs"
    );
    assert!(
        p.warnings.iter().any(|w| w.message.contains("EXTRA")),
        "{:?}",
        p.warnings
    );

    let p = plan_text(text, &ctx, &BuildOptions::default(), &mut b).unwrap();
    assert_eq!(p.output, 1);
    assert_eq!(p.stages[1].base, Base::Stage(0));
    assert_eq!(
        p.stages[1].config.entrypoint.as_deref(),
        Some(&["/bin/tool.wasm".to_string()][..])
    );
    assert_eq!(
        p.stages[1].config.cmd.as_deref(),
        Some(&["again".to_string()][..])
    );
    execute(&p, &ctx, &mut b).unwrap();
    assert_eq!(b.runs.len(), 1);
}

#[test]
fn multi_stage_copy_from_globs_and_dest_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(ctx.join("bin/sub")).unwrap();
    for f in [
        "bin/a.wasm",
        "bin/b.wasm",
        "bin/notes.txt",
        "bin/sub/c.wasm",
        "one.txt",
    ] {
        fs::write(ctx.join(f), f).unwrap();
    }
    fs::write(ctx.join("bin/a.wasm"), b"\0asm\x01\0\0\0").unwrap();
    fs::write(ctx.join(".dockerignore"), "bin/notes.txt\n").unwrap();
    let text = "\
FROM scratch AS tools
COPY bin/*.wasm /tools/
COPY [\"one.txt\", \"/renamed.txt\"]
WORKDIR /w
COPY one.txt rel/
COPY bin/sub .

FROM ws2i/base:latest
COPY --from=tools /tools/ /usr/bin/
COPY --from=0 /renamed.txt /etc/renamed
COPY --from=ws2i/base:latest /etc/passwd /copied/
RUN [\"/usr/bin/a.wasm\", \"--flag\"]
COPY --chmod=0700 . /all/
";
    let mut b = backend(tmp.path());
    let p = plan_text(text, &ctx, &BuildOptions::default(), &mut b).unwrap();
    execute(&p, &ctx, &mut b).unwrap();
    let s0 = b.stage_dir(0).unwrap().to_path_buf();
    assert!(s0.join("tools/a.wasm").is_file() && s0.join("tools/b.wasm").is_file());
    assert!(
        !s0.join("tools/notes.txt").exists(),
        "glob only matched *.wasm"
    );
    assert_eq!(
        fs::read_to_string(s0.join("renamed.txt")).unwrap(),
        "one.txt"
    );
    assert!(
        s0.join("w/rel/one.txt").is_file(),
        "relative dest is under WORKDIR; trailing / means into"
    );
    assert!(
        s0.join("w/c.wasm").is_file(),
        "a directory source copies its contents"
    );
    let s1 = b.stage_dir(1).unwrap().to_path_buf();
    assert!(s1.join("usr/bin/a.wasm").is_file() && s1.join("etc/passwd").is_file());
    assert_eq!(
        fs::read_to_string(s1.join("etc/renamed")).unwrap(),
        "one.txt"
    );
    assert!(s1.join("copied/passwd").is_file());
    assert_eq!(b.runs[0].1.argv, ["/usr/bin/a.wasm", "--flag"]);
    assert_eq!(b.runs[0].0, 1);
    assert_eq!(
        mode(&s1.join("all/bin/sub/c.wasm")),
        0o700,
        "--chmod reaches nested files"
    );
    assert_eq!(mode(&s1.join("all/bin/sub")), 0o700, "and directories");
    assert!(
        s1.join("all/one.txt").is_file() && !s1.join("all/bin/notes.txt").exists(),
        ".dockerignore honoured"
    );

    // RUN of something that is not a wasm module is refused when executed.
    let text = "FROM scratch\nCOPY bin/b.wasm /b.wasm\nRUN [\"/b.wasm\"]\n";
    let p = plan_text(text, &ctx, &BuildOptions::default(), &mut b).unwrap();
    let e = execute(&p, &ctx, &mut b).unwrap_err();
    assert!(
        format!("{e:#}").contains("line 3")
            && format!("{e:#}").contains("not a WebAssembly module"),
        "{e:#}"
    );
}

#[test]
fn hostile_context_cannot_escape() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("secret");
    fs::write(&outside, "secret").unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(ctx.join("tree")).unwrap();
    fs::write(ctx.join("tree/ok.txt"), "ok").unwrap();
    symlink(&outside, ctx.join("abs-link")).unwrap();
    symlink("../secret", ctx.join("rel-link")).unwrap();
    symlink("../../secret", ctx.join("tree/inner-link")).unwrap();
    symlink("..", ctx.join("up")).unwrap();
    symlink("ok.txt", ctx.join("tree/fine-link")).unwrap();

    for src in ["abs-link", "rel-link", "up/secret", "up/ctx/tree"] {
        let text = format!("FROM scratch\nCOPY {src} /x\n");
        let e = plan_text(
            &text,
            &ctx,
            &BuildOptions::default(),
            &mut backend(tmp.path()),
        )
        .unwrap_err();
        assert_eq!((e.line, e.kind), (2, ErrorKind::Context), "{src}: {e}");
    }
    // A glob must not walk through an escaping link either.
    let e = plan_text(
        "FROM scratch\nCOPY up/*ecret /x/\n",
        &ctx,
        &BuildOptions::default(),
        &mut backend(tmp.path()),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Context, "{e}");

    // Links inside a copied tree are copied as links, never followed.
    let mut b = backend(tmp.path());
    let p = plan_text(
        "FROM scratch\nCOPY tree /t/\n",
        &ctx,
        &BuildOptions::default(),
        &mut b,
    )
    .unwrap();
    execute(&p, &ctx, &mut b).unwrap();
    let t = b.stage_dir(0).unwrap().join("t");
    assert_eq!(
        fs::read_link(t.join("inner-link")).unwrap(),
        Path::new("../../secret")
    );
    assert_eq!(
        fs::read_link(t.join("fine-link")).unwrap(),
        Path::new("ok.txt")
    );
    assert_eq!(fs::read_to_string(t.join("ok.txt")).unwrap(), "ok");
}

/// Garbage assembled from Containerfile fragments: errors, never panics.
#[test]
fn garbage_never_panics() {
    const FRAGS: &[&str] = &[
        "FROM ",
        "scratch",
        " AS ",
        "s",
        "COPY ",
        "ADD ",
        "--from=",
        "--chmod=",
        "--chown=",
        "ENV ",
        "ARG ",
        "LABEL ",
        "RUN ",
        "CMD ",
        "EXPOSE ",
        "WORKDIR ",
        "USER ",
        "VOLUME ",
        "$",
        "${",
        "}",
        ":-",
        ":+",
        ":?",
        "\"",
        "'",
        "\\",
        "\n",
        " ",
        "\t",
        "=",
        "[",
        "]",
        "\"a\"",
        ",",
        "*",
        "?",
        "..",
        "/",
        "# escape=`\n",
        "`",
        "-",
        "x",
        "é",
        "0",
        "8080",
        "#",
        "\r\n",
        "ws2i/base:latest",
        "[!",
        "**",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(ctx.join("x")).unwrap();
    fs::write(ctx.join("x/s"), "s").unwrap();
    let mut b = backend(tmp.path());
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let n = 1 + next() % 40;
        let text: String = (0..n)
            .map(|_| FRAGS[(next() % FRAGS.len() as u64) as usize])
            .collect();
        if let Ok(cf) = Containerfile::parse(&text) {
            let _ = plan(&cf, &ctx, &BuildOptions::default(), &mut b);
        }
    }
}
