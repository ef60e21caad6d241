/**
 * Where a live query keeps its rows and `lastSeq` between visits, so a page reloaded offline
 * shows its last rows at once and, when the network returns, resumes from the stored `_seq`
 * instead of downloading the result again. Three adapters: memory (one page's life),
 * `localStorage` (small results, synchronous) and IndexedDB (large results).
 *
 * Rows are stored as the server sent them (BIGINT values as strings), with the columns that
 * say how to decode them, so storage never holds a `bigint` (which JSON cannot).
 */
/** Results kept in this page's memory (or a test's). */
export function memoryPersistence() {
    const results = new Map();
    return {
        load: (key) => {
            const text = results.get(key);
            return text === undefined ? undefined : JSON.parse(text);
        },
        save: (key, result) => {
            results.set(key, JSON.stringify(result));
        },
        remove: (key) => {
            results.delete(key);
        },
    };
}
/** Results in `localStorage` (or another Web Storage), under `prefix` + the key. A result
 *  too large for the storage's quota is not kept (the next visit takes a snapshot). */
export function localStoragePersistence(prefix = 'strand:', storage) {
    const store = () => storage ?? globalThis.localStorage;
    return {
        load: (key) => {
            const text = store()?.getItem(prefix + key);
            if (!text)
                return undefined;
            try {
                return JSON.parse(text);
            }
            catch {
                return undefined;
            }
        },
        save: (key, result) => {
            try {
                store()?.setItem(prefix + key, JSON.stringify(result));
            }
            catch {
                store()?.removeItem(prefix + key);
            }
        },
        remove: (key) => store()?.removeItem(prefix + key),
    };
}
/** Results in an IndexedDB database (`dbName`, one object store), for results too large for
 *  `localStorage`. Loading is asynchronous: rows appear when the database answers. */
export function indexedDbPersistence(dbName = 'strand') {
    const storeName = 'results';
    let opened;
    const database = () => {
        opened ??= new Promise((resolve, reject) => {
            const request = indexedDB.open(dbName, 1);
            request.onupgradeneeded = () => request.result.createObjectStore(storeName);
            request.onsuccess = () => resolve(request.result);
            request.onerror = () => reject(request.error);
        });
        return opened;
    };
    const run = (mode, act) => database().then((db) => new Promise((resolve, reject) => {
        const request = act(db.transaction(storeName, mode).objectStore(storeName));
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
    }));
    return {
        load: (key) => run('readonly', (store) => store.get(key)).catch(() => undefined),
        save: (key, result) => run('readwrite', (store) => store.put(result, key)),
        remove: (key) => run('readwrite', (store) => store.delete(key)),
    };
}
