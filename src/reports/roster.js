// A class roster, from an uploaded CSV or a JSON body, checked under the same rules either way.
// A refusal names every bad row (up to a limit), so a teacher fixes the file in one go.
import { isUtf8 } from 'node:buffer';
import { CsvError, parse } from 'csv-parse/sync';
import { z } from 'zod';
/** Refusal with an HTTP status the route will use: 400 bad rows/columns/not CSV, 413 too many students. */
export class RosterError extends Error {
    status;
    problems;
    constructor(status, message, problems = []) {
        super(message);
        this.status = status;
        this.problems = problems;
        this.name = 'RosterError';
    }
}
const COLUMNS = ['id', 'name', 'class', 'email'];
const REQUIRED = ['id', 'name'];
const MAX_PROBLEMS = 20;
// Ids name files in the zip: portable characters only, and no leading dot (hidden files, "..").
const ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;
const CONTROL = /\p{Cc}/u;
// Spreadsheets pad cells and leave optional ones blank: trim, and a blank (or null) is absent.
const blankToAbsent = (value) => typeof value === 'string' ? value.trim() || undefined : (value ?? undefined);
const text = () => z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') });
const printable = (schema) => schema.refine((value) => !CONTROL.test(value), 'contains control characters');
const studentSchema = z.strictObject({
    id: z.preprocess(blankToAbsent, text().regex(ID, 'must be 1–64 letters A–Z a–z, digits, "-", "_" or ".", not starting with "."')),
    name: z.preprocess(blankToAbsent, printable(text().max(100, 'is longer than 100 characters'))),
    class: z.preprocess(blankToAbsent, printable(text().max(50, 'is longer than 50 characters')).optional()),
    email: z.preprocess(blankToAbsent, z.email().optional()),
}, { error: (issue) => (issue.code === 'invalid_type' ? 'must be an object' : undefined) });
/** The JSON path: a list of students, or the whole body `{"students": [...]}`. */
export function validateRoster(rows, limits) {
    const list = Array.isArray(rows)
        ? rows
        : typeof rows === 'object' && rows !== null && 'students' in rows
            ? rows.students
            : undefined;
    if (!Array.isArray(list)) {
        throw new RosterError(400, 'expected {"students": [...]}, a list of students');
    }
    checkCount(list.length, limits);
    return checkRows(list.map((values) => ({ values })));
}
/** The upload path: a CSV with a header row naming its columns. */
export function parseRosterCsv(csv, limits) {
    const bytes = csvText(csv);
    const header = headerLine(bytes);
    // Excel writes ";" where "," is the decimal separator.
    const delimiter = !header.includes(',') && header.includes(';') ? ';' : ',';
    const records = [];
    let count = 0;
    let lastEnd = 0;
    try {
        parse(bytes, {
            delimiter,
            skip_empty_lines: true,
            // Counts are checked per row below, so that every bad row is named, not just the first.
            relax_column_count: true,
            on_record: (fields, context) => {
                const previousEnd = lastEnd;
                lastEnd = context.bytes;
                // A row of empty cells is a blank line too (Excel writes ",,," for formatted rows).
                if (fields.every((field) => field.trim() === ''))
                    return null;
                // Past the limit only the count is wanted, for the refusal.
                if (++count <= limits.maxStudents + 1)
                    records.push({ fields, start: previousEnd });
                return null;
            },
        });
    }
    catch (error) {
        if (error instanceof CsvError)
            throw new RosterError(400, `not a valid CSV: ${error.message}`);
        throw error;
    }
    const [head, ...rows] = records;
    if (!head)
        throw new RosterError(400, 'the file is empty');
    const columns = checkHeader(head.fields);
    checkCount(count - 1, limits);
    const lineOf = lineCounter(bytes);
    return checkRows(rows.map(({ fields, start }) => {
        // Where the record's text starts: past the empty lines that csv-parse skipped before it.
        const line = lineOf(skipLineBreaks(bytes, start));
        if (fields.length !== columns.length) {
            return {
                line,
                problem: `has ${fields.length} fields; the header has ${columns.length}`,
            };
        }
        const values = {};
        columns.forEach((column, i) => {
            // A column without a name (trailing commas from a spreadsheet) carries nothing.
            if (column !== '')
                values[column] = fields[i] ?? '';
        });
        return { values, line };
    }));
}
/** The bytes of a UTF-8 text file without its BOM, or a refusal. */
function csvText(csv) {
    if (csv.includes(0))
        throw notText('it contains NUL bytes');
    if (!isUtf8(csv))
        throw notText('it is not UTF-8 text');
    return csv[0] === 0xef && csv[1] === 0xbb && csv[2] === 0xbf ? csv.subarray(3) : csv;
}
const notText = (why) => new RosterError(400, `not a CSV text file: ${why} (save it as "CSV UTF-8")`);
const LF = 0x0a;
const CR = 0x0d;
function headerLine(bytes) {
    const start = skipLineBreaks(bytes, 0);
    let end = start;
    while (end < bytes.length && bytes[end] !== LF && bytes[end] !== CR)
        end++;
    return bytes.toString('utf8', start, end);
}
function skipLineBreaks(bytes, at) {
    while (bytes[at] === LF || bytes[at] === CR)
        at++;
    return at;
}
/** Line numbers for increasing byte offsets; "\n", "\r\n" and a lone "\r" each end a line. */
function lineCounter(bytes) {
    let at = 0;
    let line = 1;
    return (offset) => {
        for (; at < offset; at++) {
            if (bytes[at] === LF || (bytes[at] === CR && bytes[at + 1] !== LF))
                line++;
        }
        return line;
    };
}
/** The header's column names, lower-cased, '' for unnamed ones; or a refusal naming each problem. */
function checkHeader(fields) {
    const names = fields.map((field) => field.trim());
    const columns = names.map((name) => name.toLowerCase());
    const missing = REQUIRED.filter((column) => !columns.includes(column));
    const unknown = names.filter((name, i) => name !== '' && !COLUMNS.includes(columns[i] ?? ''));
    const repeated = columns.filter((column, i) => column !== '' && columns.indexOf(column) !== i);
    const problems = [
        ...listed('missing column', missing),
        ...listed('unknown column', unknown),
        ...listed('repeated column', [...new Set(repeated)]),
    ];
    if (problems.length > 0)
        throw new RosterError(400, problems.join('; '), problems);
    return columns;
}
const listed = (what, names) => names.length === 0 ? [] : [`${what}${names.length > 1 ? 's' : ''}: ${names.join(', ')}`];
function checkCount(count, { maxStudents }) {
    if (count > maxStudents) {
        throw new RosterError(413, `the roster has ${count} students; the limit is ${maxStudents}`);
    }
    if (count === 0)
        throw new RosterError(400, 'the roster has no students');
}
function checkRows(rows) {
    const problems = [];
    const students = [];
    // By lower-cased id: files in a zip that differ only in case collide on Windows and macOS.
    const ids = new Map();
    rows.forEach(({ values, line, problem }, index) => {
        const row = index + 1;
        const at = line === undefined ? `row ${row}` : `row ${row} (line ${line})`;
        if (problem !== undefined) {
            problems.push(`${at}: ${problem}`);
            return;
        }
        const result = studentSchema.safeParse(values);
        if (!result.success) {
            for (const issue of result.error.issues)
                problems.push(`${at}: ${describe(issue)}`);
        }
        // A row with a good id claims it even if its other fields are bad, so a repeat is still seen.
        const id = result.success ? result.data.id : goodId(values);
        if (id !== undefined) {
            const first = ids.get(id.toLowerCase());
            if (first) {
                const as = first.id === id ? '' : ` as ${first.id}`;
                problems.push(`${at}: id ${id} is already used by row ${first.row}${as}`);
                return;
            }
            ids.set(id.toLowerCase(), { id, row });
        }
        if (!result.success)
            return;
        const { name, class: className, email } = result.data;
        students.push({
            id: result.data.id,
            name,
            ...(className !== undefined && { class: className }),
            ...(email !== undefined && { email }),
        });
    });
    if (problems.length > 0) {
        const shown = problems.slice(0, MAX_PROBLEMS);
        const more = problems.length - shown.length;
        if (more > 0)
            shown.push(`… and ${more} more problem${more > 1 ? 's' : ''}`);
        throw new RosterError(400, `the roster has ${problems.length} problem${problems.length > 1 ? 's' : ''}`, shown);
    }
    return students;
}
function goodId(values) {
    if (typeof values !== 'object' || values === null || !('id' in values))
        return undefined;
    const id = blankToAbsent(values.id);
    return typeof id === 'string' && ID.test(id) ? id : undefined;
}
function describe(issue) {
    if (issue.code === 'unrecognized_keys')
        return listed('unknown field', issue.keys).join('');
    const field = issue.path.join('.');
    return field === '' ? issue.message : `${field}: ${issue.message}`;
}
// Latin-script names from several languages, all within WinAnsi: the cards' Helvetica shows
// nothing else.
const FIRST_NAMES = `Ada Amara Chidi Ngozi Kwame Aiko Haruto Yuki Mei Wei Jia Priya Arjun Ananya
  Fatima Omar Layla Youssef José Lucía Mateo Valentina Zoë Chloé Noémie François Søren Björn Åsa
  Jürgen Siobhán Tomás Nikolai Olga Leilani Kai Elif Ahmet Minh Hana`.split(/\s+/);
const LAST_NAMES = `Lovelace Okafor Mensah Adeyemi Tanaka Sato Chen Wang Li Patel Sharma Iyer
  Haddad Al-Masri García Fernández Rodríguez Müller Schäfer Dubois Lefèvre O'Brien Nielsen
  Lindqvist Kowalski Nowak Novák Silva Gonçalves Kim Park Nguyen Tran Rossi Esposito Petrov
  Yilmaz Kahananui Smith Johansson`.split(/\s+/);
const GRADES = 8; // 5 to 12
const CLASS_SIZE = 28;
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
/** Demo data: the same students for the same seed, in classes of about 28 (5A, 5B, …, 12D, …). */
export function sampleRoster(count, seed = 1) {
    const random = mulberry32(seed);
    const pick = (list) => list[Math.floor(random() * list.length)] ?? '';
    const classCount = Math.min(GRADES * LETTERS.length, Math.ceil(count / CLASS_SIZE));
    const perGrade = Math.max(4, Math.ceil(classCount / GRADES));
    const emails = new Map();
    return Array.from({ length: count }, (_, i) => {
        const first = pick(FIRST_NAMES);
        const last = pick(LAST_NAMES);
        const local = `${ascii(first)}.${ascii(last)}`;
        const seen = (emails.get(local) ?? 0) + 1;
        emails.set(local, seen);
        return {
            id: `S${String(i + 1).padStart(5, '0')}`,
            name: `${first} ${last}`,
            class: className(Math.floor((i * classCount) / count), perGrade),
            email: `${local}${seen > 1 ? seen : ''}@example.edu`,
        };
    });
}
const className = (index, perGrade) => `${5 + Math.floor(index / perGrade)}${LETTERS[index % perGrade] ?? ''}`;
const ascii = (name) => name
    .replace(/[øØ]/g, 'o')
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z-]/g, '');
/** A small seeded PRNG (mulberry32): enough for demo data, and the same on every platform. */
function mulberry32(seed) {
    let state = seed >>> 0;
    return () => {
        state = (state + 0x6d2b79f5) >>> 0;
        let t = state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}
