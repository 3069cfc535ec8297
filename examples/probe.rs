//! Prints the relations bindproxy finds in each statement of corpus files (statements separated
//! by a line `;;;;`): `cargo run --example probe FILE…`. A development aid.
fn main() {
    for f in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{f}: {e}");
                continue;
            }
        };
        let mut cur = String::new();
        let mut idx = 0;
        for line in text.lines().chain(std::iter::once(";;;;")) {
            if line == ";;;;" {
                let a = bindproxy::sql::analyze_uncached(&cur);
                let tables: Vec<Vec<String>> = a
                    .statements
                    .iter()
                    .map(|s| s.tables.iter().map(|t| t.to_string()).collect())
                    .collect();
                let first = cur
                    .trim()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(60)
                    .collect::<String>();
                println!("{f}#{idx} {:?} {:?} :: {first}", a.error, tables);
                cur.clear();
                idx += 1;
            } else {
                cur.push_str(line);
                cur.push('\n');
            }
        }
    }
}
