import assert from 'node:assert/strict';
import {
  parseRosterCsv,
  RosterError,
  sampleRoster,
  validateRoster,
  type Student,
} from '../../src/reports/roster.js';

const LIMITS = { maxStudents: 5000 };
const ID_RULE = 'must be 1–64 letters A–Z a–z, digits, "-", "_" or ".", not starting with "."';

/** A CSV file: one line per row, fields quoted where CSV needs it. */
function toCsv(rows: string[][], newline = '\n'): Buffer {
  const field = (value: string) =>
    /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
  return Buffer.from(rows.map((row) => row.map(field).join(',')).join(newline) + newline);
}

function refused(
  parse: () => unknown,
  status: 400 | 413,
  message: string | RegExp,
  problems: string[] = [],
): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof RosterError, String(error));
    assert.equal(error.status, status);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    assert.deepEqual(error.problems, problems);
    return true;
  });
}

const csv = (text: string) => parseRosterCsv(Buffer.from(text), LIMITS);

describe('roster (CSV upload and JSON body)', () => {
  describe('CSV', () => {
    it('when the header is padded, in any case, after a BOM, with CRLF lines, then the students come out trimmed', () => {
      const file = Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(
          ' ID , Name ,CLASS,Email\r\n' +
            'S001, Ada Lovelace ,7B, ada@example.edu \r\nS002,Zoë Müller,,\r\n',
        ),
      ]);
      assert.deepEqual(parseRosterCsv(file, LIMITS), [
        { id: 'S001', name: 'Ada Lovelace', class: '7B', email: 'ada@example.edu' },
        { id: 'S002', name: 'Zoë Müller' },
      ] satisfies Student[]);
    });

    it('when only id and name are given, in any order, then the students have just those', () => {
      assert.deepEqual(csv('name,id\nAda,S1\n'), [{ id: 'S1', name: 'Ada' }]);
    });

    it('when the header line has semicolons and no comma (Excel in many locales), then ";" separates', () => {
      assert.deepEqual(csv('id;name;class\nS1;Lovelace, Ada;7B\n'), [
        { id: 'S1', name: 'Lovelace, Ada', class: '7B' },
      ]);
      // With a comma in the header, a semicolon is just a character.
      assert.deepEqual(csv('id,name\nS1,Ada; Countess\n'), [{ id: 'S1', name: 'Ada; Countess' }]);
    });

    it('when fields are quoted (commas, quotes), then they are read whole', () => {
      assert.deepEqual(
        parseRosterCsv(
          toCsv([
            ['id', 'name'],
            ['S1', 'Dwayne "The Rock", Jr'],
          ]),
          LIMITS,
        ),
        [{ id: 'S1', name: 'Dwayne "The Rock", Jr' }],
      );
    });

    it('when there are empty lines and rows of empty cells, then they are skipped, and line numbers still point at the right line', () => {
      refused(
        () => csv('\n\nid,name,class\n\nS1,Ada,7B\n,,\n  ,  ,\nS2,,7B\n\n'),
        400,
        'the roster has 1 problem',
        ['row 2 (line 8): name: is required'],
      );
    });

    it('when a quoted cell spans lines (CRLF), then later rows are numbered by their first line', () => {
      const file = toCsv(
        [
          ['id', 'name', 'class'],
          ['S1', 'Ada', 'two\r\nlines'],
          ['S2', 'Bo', 'x'.repeat(51)],
        ],
        '\r\n',
      );
      refused(() => parseRosterCsv(file, LIMITS), 400, 'the roster has 2 problems', [
        'row 1 (line 2): class: contains control characters',
        'row 2 (line 4): class: is longer than 50 characters',
      ]);
    });

    it('when lines end with a lone CR (old Mac files), then rows and line numbers are still right', () => {
      refused(() => csv('id,name\rS1,Ada\r\rS2,\r'), 400, 'the roster has 1 problem', [
        'row 2 (line 4): name: is required',
      ]);
    });

    it('when a required column is missing, then it is named', () => {
      refused(() => csv('id,class\nS1,7B\n'), 400, 'missing column: name', [
        'missing column: name',
      ]);
      refused(
        () => csv('S1,Ada\nS2,Bo\n'),
        400,
        'missing columns: id, name; unknown columns: S1, Ada',
        ['missing columns: id, name', 'unknown columns: S1, Ada'],
      );
    });

    it('when a column is unknown or repeated, then it is named', () => {
      refused(() => csv('id,name,Phone,age\nS1,Ada,1,2\n'), 400, 'unknown columns: Phone, age', [
        'unknown columns: Phone, age',
      ]);
      refused(() => csv('id,name,Name\nS1,Ada,Ada\n'), 400, 'repeated column: name', [
        'repeated column: name',
      ]);
    });

    it('when trailing columns have no name (a spreadsheet export), then they are ignored', () => {
      assert.deepEqual(csv('id,name,,\nS1,Ada,,\nS2,Bo,x,\n'), [
        { id: 'S1', name: 'Ada' },
        { id: 'S2', name: 'Bo' },
      ]);
    });

    it('when the file is not UTF-8 text, then it is "not a CSV text file"', () => {
      const utf16 = Buffer.from('\ufeffid,name\r\nS1,Ada\r\n', 'utf16le');
      refused(
        () => parseRosterCsv(utf16, LIMITS),
        400,
        'not a CSV text file: it contains NUL bytes (save it as "CSV UTF-8")',
      );
      const latin1 = Buffer.from('id,name\nS1,José\n', 'latin1');
      refused(
        () => parseRosterCsv(latin1, LIMITS),
        400,
        'not a CSV text file: it is not UTF-8 text (save it as "CSV UTF-8")',
      );
      const zip = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 8, 0]);
      refused(() => parseRosterCsv(zip, LIMITS), 400, /^not a CSV text file/);
    });

    it('when a quote is not closed, then the CSV is refused with the line from csv-parse', () => {
      refused(
        () => csv('id,name\nS1,Ada\nS2,"Bob\nS3,Cy\n'),
        400,
        /^not a valid CSV: Quote Not Closed: .* at line 4$/,
      );
      refused(
        () => csv('id,name\nS1,"Ada"x\n'),
        400,
        /^not a valid CSV: Invalid Closing Quote: .* at line 2 /,
      );
    });

    it('when rows have more or fewer fields than the header, then each is named', () => {
      refused(
        () => csv('id,name,class\nS1,Ada\nS2,Bo,7B\nS3,Cy,7B,extra\n'),
        400,
        'the roster has 2 problems',
        [
          'row 1 (line 2): has 2 fields; the header has 3',
          'row 3 (line 4): has 4 fields; the header has 3',
        ],
      );
    });

    it('when the file is empty or has only a header, then it is refused', () => {
      for (const empty of ['', '\ufeff', '\r\n\n', ',,\n']) {
        refused(() => csv(empty), 400, 'the file is empty');
      }
      refused(() => csv('id,name\n\n'), 400, 'the roster has no students');
    });
  });

  describe('the same rules, CSV and JSON', () => {
    // Each bad row and exactly the problems it must get.
    const cases: { row: Record<string, string>; problems: string[] }[] = [
      { row: { id: '', name: 'Ada' }, problems: ['id: is required'] },
      { row: { id: 'S 1', name: 'Ada' }, problems: [`id: ${ID_RULE}`] },
      { row: { id: '.hidden', name: 'Ada' }, problems: [`id: ${ID_RULE}`] },
      { row: { id: 'x'.repeat(65), name: 'Ada' }, problems: [`id: ${ID_RULE}`] },
      { row: { id: 'S/1', name: 'Ada' }, problems: [`id: ${ID_RULE}`] },
      { row: { id: 'Ś1', name: 'Ada' }, problems: [`id: ${ID_RULE}`] },
      { row: { id: 'S2', name: '   ' }, problems: ['name: is required'] },
      {
        row: { id: 'S3', name: 'x'.repeat(101) },
        problems: ['name: is longer than 100 characters'],
      },
      { row: { id: 'S4', name: 'Ada\u0007' }, problems: ['name: contains control characters'] },
      // What the cards cannot draw is named with its code point, never printed as "?".
      {
        row: { id: 'S8', name: 'אבי כהן' },
        problems: [
          'name: "א" (U+05D0, Hebrew script) cannot be printed on the cards, which support Latin, Greek, Cyrillic, Chinese and Japanese',
        ],
      },
      {
        row: { id: 'S9', name: '김민준' },
        problems: [
          'name: "김" (U+AE40, Hangul script) cannot be printed on the cards, which support Latin, Greek, Cyrillic, Chinese and Japanese',
        ],
      },
      {
        row: { id: 'S10', name: 'Ada\u202eecalevol' },
        problems: ['name: U+202E is an invisible formatting character'],
      },
      {
        row: { id: 'S11', name: 'Ada', class: '7\u200bB' },
        problems: ['class: U+200B is an invisible formatting character'],
      },
      {
        row: { id: 'S5', name: 'Ada', class: 'x'.repeat(51) },
        problems: ['class: is longer than 50 characters'],
      },
      { row: { id: 'S6', name: 'Ada', email: 'ada@' }, problems: ['email: Invalid email address'] },
      {
        row: { id: 'S 7', name: '', class: '7B', email: 'nope' },
        problems: [`id: ${ID_RULE}`, 'name: is required', 'email: Invalid email address'],
      },
    ];
    const good = [
      { id: 'x'.repeat(64), name: ` ${'y'.repeat(100)} ` },
      {
        id: 'a-B_c.9',
        name: 'Siobhán Ó Súilleabháin',
        class: 'x'.repeat(50),
        email: 'o.s@example.ie',
      },
      { id: '_1', name: '王小明' },
      { id: '_2', name: 'Αλέξανδρος Παπαδόπουλος', class: 'Β2' },
      { id: '_3', name: 'Ёлкина Анастасия', class: '7Б' },
      { id: '_4', name: 'さくら 髙橋', class: '2年B組' },
    ];
    const expected: Student[] = [
      { id: 'x'.repeat(64), name: 'y'.repeat(100) },
      {
        id: 'a-B_c.9',
        name: 'Siobhán Ó Súilleabháin',
        class: 'x'.repeat(50),
        email: 'o.s@example.ie',
      },
      { id: '_1', name: '王小明' },
      { id: '_2', name: 'Αλέξανδρος Παπαδόπουλος', class: 'Β2' },
      { id: '_3', name: 'Ёлкина Анастасия', class: '7Б' },
      { id: '_4', name: 'さくら 髙橋', class: '2年B組' },
    ];
    const columns = ['id', 'name', 'class', 'email'];
    const csvOf = (rows: Partial<Record<string, string>>[]) =>
      toCsv([columns, ...rows.map((row) => columns.map((column) => row[column] ?? ''))]);

    it('when every row is good, then both paths give the same students', () => {
      assert.deepEqual(parseRosterCsv(csvOf(good), LIMITS), expected);
      assert.deepEqual(validateRoster(good, LIMITS), expected);
    });

    it('when rows break the rules, then every bad row is named with each of its problems', () => {
      const rows = [...good, ...cases.map((c) => c.row)];
      const problems = cases.flatMap((c, i) =>
        c.problems.map((p) => ({ row: good.length + i + 1, problem: p })),
      );
      const count = `the roster has ${problems.length} problems`;
      refused(
        () => parseRosterCsv(csvOf(rows), LIMITS),
        400,
        count,
        problems.map(({ row, problem }) => `row ${row} (line ${row + 1}): ${problem}`),
      );
      refused(
        () => validateRoster({ students: rows }, LIMITS),
        400,
        count,
        problems.map(({ row, problem }) => `row ${row}: ${problem}`),
      );
    });

    it('when an id repeats, even in another case, then the repeat names the row that has it', () => {
      const rows = [
        { id: 'S001', name: 'Ada' },
        { id: 'S002', name: 'Bo', email: 'bad' },
        { id: 'S003', name: 'Cy' },
        { id: 'S001', name: 'Di' },
        { id: 's003', name: 'Ed' },
        { id: 'S002', name: 'Fay' },
      ];
      const expectedProblems = [
        'row 2: email: Invalid email address',
        'row 4: id S001 is already used by row 1',
        'row 5: id s003 is already used by row 3 as S003',
        // A row with other problems still holds its id.
        'row 6: id S002 is already used by row 2',
      ];
      refused(
        () => validateRoster(rows, LIMITS),
        400,
        'the roster has 4 problems',
        expectedProblems,
      );
      refused(
        () => parseRosterCsv(csvOf(rows), LIMITS),
        400,
        'the roster has 4 problems',
        expectedProblems.map((p) =>
          p.replace(/^row (\d+)/, (_, n: string) => `row ${n} (line ${Number(n) + 1})`),
        ),
      );
    });

    it('when there are more than 20 problems, then 20 are listed and the rest counted', () => {
      const rows = Array.from({ length: 30 }, (_, i) => ({ id: `S${i}`, name: 'Ada', email: 'x' }));
      rows.push({ id: 'S0', name: '', email: 'x' });
      const listed = Array.from(
        { length: 20 },
        (_, i) => `row ${i + 1}: email: Invalid email address`,
      );
      refused(() => validateRoster(rows, LIMITS), 400, 'the roster has 33 problems', [
        ...listed,
        '… and 13 more problems',
      ]);
      refused(() => validateRoster(rows.slice(0, 21), LIMITS), 400, 'the roster has 21 problems', [
        ...listed,
        '… and 1 more problem',
      ]);
    });

    it('when there are 5,000 students, then they pass; 5,001, then it is a 413, whatever the rows hold', () => {
      const students = sampleRoster(5001);
      const rows = students.map((s) => [s.id, s.name, s.class ?? '', s.email ?? '']);
      assert.equal(parseRosterCsv(toCsv([columns, ...rows.slice(0, 5000)]), LIMITS).length, 5000);
      assert.equal(validateRoster(students.slice(0, 5000), LIMITS).length, 5000);
      const tooMany = 'the roster has 5001 students; the limit is 5000';
      refused(() => parseRosterCsv(toCsv([columns, ...rows]), LIMITS), 413, tooMany);
      refused(() => validateRoster(students, LIMITS), 413, tooMany);
      const bad = students.map((s) => ({ ...s, email: 'bad' }));
      refused(() => validateRoster({ students: bad }, LIMITS), 413, tooMany);
    });

    it('when there are no students, then it is a 400', () => {
      refused(() => validateRoster([], LIMITS), 400, 'the roster has no students');
      refused(() => validateRoster({ students: [] }, LIMITS), 400, 'the roster has no students');
    });
  });

  describe('JSON', () => {
    it('when the body is not a list of students, then it is a 400', () => {
      for (const body of [undefined, null, 'S1,Ada', { students: 'S1' }, { rows: [] }, 42]) {
        refused(
          () => validateRoster(body, LIMITS),
          400,
          'expected {"students": [...]}, a list of students',
        );
      }
    });

    it('when rows are not objects, have other fields or other types, then each is named', () => {
      refused(
        () =>
          validateRoster(
            [
              { id: 'S1', name: 'Ada', class: null, email: null },
              'S2,Bo',
              { id: 3, name: ['Cy'] },
              { id: 'S4', name: 'Di', phone: '1', age: 9 },
              null,
            ],
            LIMITS,
          ),
        400,
        'the roster has 5 problems',
        [
          'row 2: must be an object',
          'row 3: id: must be a string',
          'row 3: name: must be a string',
          'row 4: unknown fields: phone, age',
          'row 5: must be an object',
        ],
      );
      assert.deepEqual(
        validateRoster([{ id: 'S1', name: 'Ada', class: null, email: '' }], LIMITS),
        [{ id: 'S1', name: 'Ada' }],
      );
    });
  });

  describe('sampleRoster', () => {
    it('when 2,000 are asked for, then they pass both paths, with unique ids and emails, in classes of about 28', () => {
      const roster = sampleRoster(2000);
      assert.equal(roster.length, 2000);
      const limits = { maxStudents: 2000 };
      assert.deepEqual(validateRoster(roster, limits), roster);
      const columns = ['id', 'name', 'class', 'email'];
      const file = toCsv([
        columns,
        ...roster.map((s) => [s.id, s.name, s.class ?? '', s.email ?? '']),
      ]);
      assert.deepEqual(parseRosterCsv(file, limits), roster);
      assert.equal(new Set(roster.map((s) => s.email)).size, 2000);
      const [first] = roster;
      assert.equal(first?.id, 'S00001');
      assert.match(first.email ?? '', /^[a-z-]+\.[a-z-]+@example\.edu$/);
      const classes = new Map<string, number>();
      for (const s of roster) classes.set(s.class ?? '', (classes.get(s.class ?? '') ?? 0) + 1);
      for (const [name, size] of classes) {
        assert.match(name, /^([5-9]|1[0-2])[A-I]$/);
        assert.ok(size >= 27 && size <= 28, `${name}: ${size}`);
      }
      // Latin script only: every name is within WinAnsi (Latin-1 here), which the cards can show.
      assert.ok(roster.every((s) => /^[\x20-\x7e\xa0-\xff]+$/.test(s.name)));
      assert.ok(new Set(roster.map((s) => s.name)).size > 500, 'names vary');
    });

    it('when the seed is the same, then so are the students; another seed, then others', () => {
      assert.deepEqual(sampleRoster(300, 7), sampleRoster(300, 7));
      assert.deepEqual(sampleRoster(300), sampleRoster(300, 1));
      assert.notDeepEqual(sampleRoster(300, 7), sampleRoster(300, 8));
      assert.deepEqual(
        sampleRoster(28).map((s) => s.class),
        Array(28).fill('5A'),
      );
      assert.deepEqual(
        [...new Set(sampleRoster(100).map((s) => s.class))],
        ['5A', '5B', '5C', '5D'],
      );
    });
  });
});
