//! The PyTorch and LibTorch peers: `torch_bench.py` run by `$TORCH_PYTHON`
//! (default `python3`), and `libtorch_bench.cpp` compiled with `$CXX`
//! (default `c++`) against the headers and libraries that ship in the same
//! torch wheel. Both write records in the harness's JSON format; a wrong
//! result in either aborts the run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::report::Record;

/// One run of a torch child: where it writes, which pass of the harness it
/// belongs to, and how it measures.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    /// The output directory.
    pub out: &'a Path,
    /// The harness's pass (names the child's JSON file).
    pub pass: usize,
    /// `--quick`: fewer sizes, short repetitions.
    pub quick: bool,
    /// Thread counts to measure.
    pub threads: &'a [usize],
    /// Repetitions per figure (the best is kept).
    pub reps: usize,
}

fn python() -> String {
    std::env::var("TORCH_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Output lines of `python -c code`, or `None` when it fails.
fn ask_python(code: &str) -> Option<Vec<String>> {
    let o = Command::new(python()).args(["-c", code]).output().ok()?;
    o.status.success().then(|| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
}

/// `ATEN_CPU_CAPABILITY` picks the code of ATen's own kernels only: the
/// wheel's GEMM (oneMKL) and oneDNN choose theirs from the CPU and take
/// AVX-512 where it has it (measured on an Intel Xeon with AVX-512: sgemm at
/// 130-150 GFLOP/s on one thread, twice the AVX2 FMA peak). For an AVX2 run
/// (`ATEN_CPU_CAPABILITY=avx2`) the torch children get
/// `MKL_ENABLE_INSTRUCTIONS=AVX2` and `ONEDNN_MAX_CPU_ISA=AVX2` too, unless
/// those are set already; returns a note saying so.
fn isa_env(cmd: &mut Command) -> Option<String> {
    let aten = std::env::var("ATEN_CPU_CAPABILITY").ok()?;
    if !aten.eq_ignore_ascii_case("avx2") {
        return None;
    }
    let mut set = Vec::new();
    for var in ["MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA"] {
        if std::env::var_os(var).is_none() {
            cmd.env(var, "AVX2");
            set.push(format!("{var}=AVX2"));
        }
    }
    (!set.is_empty()).then(|| {
        format!(
            "ATEN_CPU_CAPABILITY=avx2: torch children also run with {} (oneMKL and oneDNN ignore ATen's setting)",
            set.join(" ")
        )
    })
}

fn threads_arg(threads: &[usize]) -> String {
    threads
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn read_records(path: &Path) -> (String, Vec<Record>) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let records = v["records"]
        .as_array()
        .map(|a| a.iter().filter_map(Record::from_json).collect())
        .unwrap_or_default();
    (v["torch"].as_str().unwrap_or("?").to_string(), records)
}

fn skipped(notes: &mut Vec<String>, note: String) -> Vec<Record> {
    eprintln!("{note}");
    notes.push(note);
    Vec::new()
}

/// Runs `torch_bench.py` (`run.reps` repetitions per figure); on success
/// returns its records, else a note.
pub fn pytorch(run: Run<'_>, notes: &mut Vec<String>) -> Vec<Record> {
    let python = python();
    let Some(version) = ask_python("import torch; print(torch.__version__)") else {
        return skipped(
            notes,
            format!(
                "PyTorch skipped: `{python} -c 'import torch'` failed (set TORCH_PYTHON to a Python with torch)"
            ),
        );
    };
    let version = version.join(" ");
    eprintln!("== PyTorch {version} ({python})");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("torch_bench.py");
    let json_path = run.out.join(format!("torch{}.json", run.pass));
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg("--out")
        .arg(&json_path)
        .arg("--threads")
        .arg(threads_arg(run.threads))
        .arg("--reps")
        .arg(run.reps.to_string());
    if run.quick {
        cmd.arg("--quick");
    }
    if let Some(note) = isa_env(&mut cmd) {
        notes.push(note);
    }
    let status = cmd.status().expect("start torch_bench.py");
    if !status.success() {
        eprintln!("torch_bench.py failed ({status}); a wrong result aborts the run");
        std::process::exit(3);
    }
    notes.push(format!(
        "PyTorch {version} via {python} (torch_bench.py), same workloads and clocks"
    ));
    read_records(&json_path).1
}

/// The compiled LibTorch benchmark.
pub struct LibTorch {
    exe: PathBuf,
    cxx: String,
}

/// Compiles `libtorch_bench.cpp` into `out`; returns the executable, or
/// `None` with a note (no torch, or the compiler failed).
pub fn build_libtorch(out: &Path, notes: &mut Vec<String>) -> Option<LibTorch> {
    let probe = "import os, torch; print(os.path.dirname(torch.__file__)); \
                 print(int(torch._C._GLIBCXX_USE_CXX11_ABI))";
    let Some(lines) = ask_python(probe).filter(|l| l.len() == 2) else {
        skipped(
            notes,
            "LibTorch skipped: no torch to take its headers and libraries from".to_string(),
        );
        return None;
    };
    let (dir, abi) = (Path::new(&lines[0]), &lines[1]);
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_string());
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("libtorch_bench.cpp");
    let exe = out.join("libtorch_bench");
    eprintln!("== LibTorch: compiling {} with {cxx}", source.display());
    let lib = dir.join("lib");
    let built = Command::new(&cxx)
        .args(["-O2", "-std=c++20", "-w"])
        .arg(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .arg("-I")
        .arg(dir.join("include"))
        .arg("-I")
        .arg(dir.join("include/torch/csrc/api/include"))
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-ltorch", "-ltorch_cpu", "-lc10"])
        .status();
    match built {
        Ok(s) if s.success() => {}
        Ok(s) => {
            skipped(notes, format!("LibTorch skipped: {cxx} failed ({s})"));
            return None;
        }
        Err(e) => {
            skipped(notes, format!("LibTorch skipped: cannot run {cxx} ({e})"));
            return None;
        }
    }
    Some(LibTorch { exe, cxx })
}

/// Runs the LibTorch benchmark built by [`build_libtorch`] (`run.reps`
/// repetitions per figure) and returns its records.
pub fn libtorch(lt: &LibTorch, run: Run<'_>, notes: &mut Vec<String>) -> Vec<Record> {
    let json_path = run.out.join(format!("libtorch{}.json", run.pass));
    let mut cmd = Command::new(&lt.exe);
    cmd.arg(&json_path)
        .arg(threads_arg(run.threads))
        .arg(if run.quick { "1" } else { "0" })
        .arg(run.reps.to_string());
    isa_env(&mut cmd);
    let status = cmd.status().expect("start libtorch_bench");
    if !status.success() {
        eprintln!("libtorch_bench failed ({status}); a wrong result aborts the run");
        std::process::exit(3);
    }
    let (version, records) = read_records(&json_path);
    notes.push(format!(
        "LibTorch {version} (C++: libtorch_bench.cpp built with {} against the torch wheel's headers and libraries), \
         same workloads and clocks; its matrix products allocate their result",
        lt.cxx
    ));
    records
}
