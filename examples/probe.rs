use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
fn main() {
    for f in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, s) in text.split("\n;;;;\n").enumerate() {
            let s = s.trim();
            if s.is_empty() {
                continue;
            }
            match Parser::parse_sql(&PostgreSqlDialect {}, s) {
                Ok(st) => {
                    let mut rels = vec![];
                    let _ = sqlparser::ast::visit_relations(&st, |r| {
                        rels.push(r.to_string());
                        std::ops::ControlFlow::<()>::Continue(())
                    });
                    let kinds: Vec<String> = st
                        .iter()
                        .map(|x| format!("{:?}", x).chars().take(30).collect())
                        .collect();
                    println!("{f}#{i} OK {:?} {:?}", rels, kinds);
                }
                Err(e) => println!("{f}#{i} ERR {e} :: {}", s.lines().next().unwrap_or("")),
            }
        }
    }
}
