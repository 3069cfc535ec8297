// information_schema.columns of each table named on the command line, queried with node-postgres and a $1
// parameter (the extended protocol), printed as one JSON document. Run by tests/python/test_catalog.py against
// bindproxy and against a real PostgreSQL database holding the same DDL; the two outputs must be equal.
//
//   node columns.js 'postgresql://user@host:port/db' table [table ...]
'use strict';
const { Client } = require('pg');

const SQL = `SELECT column_name, ordinal_position, data_type, is_nullable, column_default,
                    character_maximum_length, numeric_precision, numeric_scale, udt_name
               FROM information_schema.columns
              WHERE table_schema = 'public' AND table_name = $1
              ORDER BY ordinal_position`;

async function main() {
  const [url, ...tables] = process.argv.slice(2);
  if (!url || tables.length === 0) {
    console.error('usage: node columns.js URL TABLE...');
    process.exit(2);
  }
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10000 });
  await client.connect();
  const out = {};
  try {
    for (const t of tables) {
      const res = await client.query(SQL, [t]);
      out[t] = res.rows;
    }
  } finally {
    await client.end();
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => {
  console.error(`${e.code || ''} ${e.message}`);
  process.exit(1);
});
