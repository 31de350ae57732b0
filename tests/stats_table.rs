//! `--stats` and `--stats-json` agree: the table, grouped by topic, shows every JSON key
//! (object members as `key.member`) with the same number, and the JSON keys stay the
//! documented, stable list.

use std::process::Command;

/// The stable `--stats-json` keys, in order (README: "Statistics").
const KEYS: &[&str] = &[
    "backend",
    "guest_instructions",
    "wall_ns",
    "mips",
    "exit_code",
    "syscalls",
    "unknown_syscalls",
    "warnings",
    "blocks_compiled",
    "guest_insns_compiled",
    "compile_ns",
    "chained_exits",
    "dispatcher_entries",
    "code_bytes",
    "cache_flushes",
    "near_code",
    "mem_mode",
    "accesses",
    "transitions",
    "recompiles",
    "tier_ups",
    "tier_ups_deferred",
    "regions_compiled",
    "region_blocks",
    "region_compile_ns",
    "full_sync_translations",
    "recovery_recompiles",
    "code_pages_invalidated",
    "blocks_split",
    "by_backend",
    "faults_handled",
    "registers_recovered",
    "registers_computed",
    "code_write_faults",
    "faults_rolled_back",
    "verify",
];

/// A small JSON reader for the statistics: an object of strings, numbers, literals and
/// objects, flattened to (`key` or `key.member`, value text) in order. Also returns the
/// top-level keys.
fn flatten(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    struct P<'a>(&'a [u8], usize);
    impl P<'_> {
        fn ws(&mut self) {
            while self.1 < self.0.len() && self.0[self.1].is_ascii_whitespace() {
                self.1 += 1;
            }
        }
        fn eat(&mut self, c: u8) {
            self.ws();
            assert_eq!(self.0.get(self.1), Some(&c), "expected {:?} at {}", c as char, self.1);
            self.1 += 1;
        }
        fn string(&mut self) -> String {
            self.eat(b'"');
            let start = self.1;
            while self.0[self.1] != b'"' {
                self.1 += 1;
            }
            self.1 += 1;
            String::from_utf8(self.0[start..self.1 - 1].to_vec()).unwrap()
        }
        fn object(&mut self, prefix: &str, out: &mut Vec<(String, String)>, top: &mut Vec<String>) {
            self.eat(b'{');
            self.ws();
            if self.0[self.1] == b'}' {
                self.1 += 1;
                return;
            }
            loop {
                let key = self.string();
                if prefix.is_empty() {
                    top.push(key.clone());
                }
                let name = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
                self.eat(b':');
                self.ws();
                match self.0[self.1] {
                    b'{' => self.object(&name, out, &mut Vec::new()),
                    b'"' => {
                        let v = self.string();
                        out.push((name, v));
                    }
                    _ => {
                        let start = self.1;
                        while !matches!(self.0[self.1], b',' | b'}') && !self.0[self.1].is_ascii_whitespace() {
                            self.1 += 1;
                        }
                        let v = String::from_utf8(self.0[start..self.1].to_vec()).unwrap();
                        let literal = matches!(v.as_str(), "true" | "false") || v.parse::<f64>().is_ok();
                        assert!(literal, "bad value {v:?}");
                        out.push((name, v));
                    }
                }
                self.ws();
                if self.0[self.1] == b',' {
                    self.1 += 1;
                    continue;
                }
                self.eat(b'}');
                return;
            }
        }
    }
    let mut p = P(text.as_bytes(), 0);
    let (mut out, mut top) = (Vec::new(), Vec::new());
    p.object("", &mut out, &mut top);
    p.ws();
    assert_eq!(p.1, text.len(), "trailing text");
    (out, top)
}

/// The table's rows (`key value`) and topic titles.
fn table(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut rows = Vec::new();
    let mut titles = Vec::new();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("rvdbt statistics"));
    for line in lines {
        if let Some(row) = line.strip_prefix("    ") {
            let fields: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(fields.len(), 2, "row {line:?}");
            rows.push((fields[0].to_string(), fields[1].to_string()));
        } else {
            let title = line.strip_prefix("  ").unwrap_or_else(|| panic!("unexpected line {line:?}"));
            titles.push(title.to_string());
        }
    }
    (rows, titles)
}

#[test]
fn table_numbers_equal_json_numbers() {
    let dir = std::env::temp_dir().join(format!("rvdbt-stats-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, backend) in [("interp", "interp"), ("cranelift", "cranelift")] {
        let json_path = dir.join(format!("{name}.json"));
        let o = Command::new(env!("CARGO_BIN_EXE_rvdbt"))
            .args(["run", "--backend", backend, "--compile-after", "0", "--stats", "--stats-json"])
            .arg(&json_path)
            .arg("guest-programs/bin/qsort.elf")
            .output()
            .expect("run rvdbt");
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let stderr = String::from_utf8(o.stderr).unwrap();
        let start = stderr.find("rvdbt statistics").expect("the table");
        let (rows, titles) = table(&stderr[start..]);
        let (json, top) = flatten(&std::fs::read_to_string(&json_path).unwrap());

        assert_eq!(top, KEYS, "the --stats-json keys are stable");
        assert_eq!(titles, ["run", "translation", "memory accesses", "faults", "verification"]);
        let mut sorted_rows = rows.clone();
        sorted_rows.sort();
        let mut sorted_json = json.clone();
        sorted_json.sort();
        assert_eq!(sorted_rows, sorted_json, "{backend}: the table shows exactly the JSON's keys and values");
        let value = |k: &str| &json.iter().find(|(key, _)| key == k).unwrap().1;
        assert_eq!(value("backend"), backend);
        if backend == "cranelift" {
            assert_ne!(value("blocks_compiled"), "0");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
