/**
 * Values as the server writes them with `"bigint": "string"` (docs/http.md, "Values in
 * JSON"), turned into JavaScript values by the result's schema: BIGINT columns into `bigint`
 * (or kept as strings), `_seq` always a string. A JSON number past 2^53 would reach
 * JavaScript rounded, which is why the SDK always asks the server for strings.
 */
export const SEQ_COLUMN = '_seq';
/** The BIGINT columns of `columns` that are decoded (all but `_seq`). */
export function bigintColumns(columns) {
    return columns.filter((c) => c.type === 'BIGINT' && c.name !== SEQ_COLUMN).map((c) => c.name);
}
/** `raw` with its BIGINT columns as `mode` says; other values as they came. */
export function decodeRow(raw, bigints, mode) {
    if (bigints.length === 0 || mode === 'string')
        return { ...raw };
    const row = { ...raw };
    for (const name of bigints) {
        const value = row[name];
        if (typeof value === 'string' && /^-?\d+$/.test(value))
            row[name] = BigInt(value);
        else if (typeof value === 'number' && Number.isInteger(value))
            row[name] = BigInt(value);
    }
    return row;
}
/** A row back in the form the server sent (bigints as strings), for storage. */
export function encodeRow(row) {
    const raw = {};
    for (const [name, value] of Object.entries(row)) {
        raw[name] = typeof value === 'bigint' ? value.toString() : value;
    }
    return raw;
}
/** Parameters as JSON: a `bigint` as its decimal string (the server reads BIGINT from one). */
export function encodeParams(params) {
    return params.map((value) => (typeof value === 'bigint' ? value.toString() : value));
}
/** Compare two `_seq`s (decimal strings of up to 20 digits) without losing precision. */
export function compareSeq(a, b) {
    if (a.length !== b.length)
        return a.length < b.length ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
}
