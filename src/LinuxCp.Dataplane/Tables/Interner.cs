using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LinuxCp.Dataplane.Tables;

/// <summary>The one implementation of "intern + reference count + free list": equal keys share
/// one small integer id while anyone holds a reference. Ids are dense, so callers keep per-id
/// state in plain arrays indexed by them.
///
/// Two reuse policies. Immediate: a released id is reusable at once (control-plane-only data,
/// such as next-hop lists). Deferred: a released id waits in a pending list until the owner calls
/// <see cref="Reclaim"/> after a grace period (ids that workers read, such as FIB groups and
/// paths: an id must not be rewritten while a worker may still hold it).
///
/// The id space is bounded; when it is used up, <see cref="TryAcquire(in TKey, out int, out bool)"/>
/// refuses and counts it instead of throwing. Not thread-safe (callers serialise).</summary>
public sealed class Interner<TKey> where TKey : notnull
{
    private readonly Dictionary<TKey, int> _ids;
    private readonly bool _deferred;
    private readonly int _first;
    private readonly int _limit;
    private TKey?[] _keys;
    private int[] _refs;
    private int[] _free;
    private int _freeCount;
    private int[] _pending;
    private int _pendingCount;
    private int _next;

    /// <param name="firstId">the lowest id handed out (ids below it are the caller's reserved ones).</param>
    /// <param name="limit">one past the highest id handed out.</param>
    /// <param name="deferred">released ids wait for <see cref="Reclaim"/> before reuse.</param>
    public Interner(int firstId, int limit, bool deferred, IEqualityComparer<TKey>? comparer = null, int initialCapacity = 16)
    {
        if (firstId < 0 || limit <= firstId)
            throw new ArgumentOutOfRangeException(nameof(limit));
        _first = firstId;
        _limit = limit;
        _deferred = deferred;
        _next = firstId;
        _ids = new Dictionary<TKey, int>(initialCapacity, comparer);
        int cap = Math.Min(limit, Math.Max(firstId + 1, initialCapacity));
        _keys = new TKey?[cap];
        _refs = new int[cap];
        _free = new int[16];
        _pending = new int[16];
    }

    /// <summary>Ids in use (interned keys).</summary>
    public int Count => _ids.Count;

    /// <summary>Released ids waiting for a grace period (deferred policy).</summary>
    public int PendingCount => _pendingCount;

    /// <summary>How many ids the space holds in all.</summary>
    public int Capacity => _limit - _first;

    /// <summary>Acquisitions refused because every id was taken (or pending).</summary>
    public long Refusals { get; private set; }

    /// <summary>One past the highest id ever handed out: per-id arrays of the caller need this size.</summary>
    public int HighWater => _next;

    public TKey this[int id] => _keys[id]!;

    public int References(int id) => _refs[id];

    public bool Contains(in TKey key) => _ids.ContainsKey(key);

    /// <summary>The id of an interned key without taking a reference, or -1.</summary>
    public int Find(in TKey key) => _ids.TryGetValue(key, out int id) ? id : -1;

    /// <summary>Takes a reference on the id of <paramref name="key"/>, interning it if new
    /// (<paramref name="created"/>: the caller initialises its per-id state). False, with id -1,
    /// when the id space is exhausted.</summary>
    public bool TryAcquire(in TKey key, out int id, out bool created)
    {
        ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_ids, key, out bool exists);
        if (exists)
        {
            id = slot;
            _refs[id]++;
            created = false;
            return true;
        }
        if (!TryTakeId(out id))
        {
            _ids.Remove(key);
            created = false;
            Refusals++;
            return false;
        }
        slot = id;
        _keys[id] = key;
        _refs[id] = 1;
        created = true;
        return true;
    }

    /// <summary>As <see cref="TryAcquire(in TKey, out int, out bool)"/>, looking the key up by an
    /// alternate form first (e.g. a span), so a hit allocates nothing; the key is made from it
    /// only when new. The dictionary's comparer must support the alternate form.</summary>
    public bool TryAcquire<TAlt>(TAlt alt, out int id, out bool created) where TAlt : notnull, allows ref struct
    {
        var lookup = _ids.GetAlternateLookup<TAlt>();
        if (lookup.TryGetValue(alt, out id))
        {
            _refs[id]++;
            created = false;
            return true;
        }
        TKey key = ((IAlternateEqualityComparer<TAlt, TKey>)_ids.Comparer).Create(alt);
        return TryAcquire(key, out id, out created);
    }

    /// <summary>One more reference on an id already held.</summary>
    public void AddRef(int id)
    {
        if (_refs[id] <= 0)
            throw new InvalidOperationException($"id {id} is not held");
        _refs[id]++;
    }

    /// <summary>Drops a reference. Returns true when it was the last: the key is forgotten and
    /// the id is free (immediate policy) or pending (deferred policy).</summary>
    public bool Release(int id)
    {
        if (id < _first || id >= _next || _refs[id] <= 0)
            throw new InvalidOperationException($"id {id} is not held");
        if (--_refs[id] > 0)
            return false;
        _ids.Remove(_keys[id]!);
        _keys[id] = default;
        if (_deferred)
            Push(ref _pending, ref _pendingCount, id);
        else
            Push(ref _free, ref _freeCount, id);
        return true;
    }

    /// <summary>Makes every pending id reusable (call after a grace period that started after
    /// the last release). Returns how many.</summary>
    public int Reclaim()
    {
        int n = _pendingCount;
        for (int i = 0; i < n; i++)
            Push(ref _free, ref _freeCount, _pending[i]);
        _pendingCount = 0;
        return n;
    }

    /// <summary>Every interned id (for show commands and sweeps; not for hot paths).</summary>
    public IEnumerable<int> Ids()
    {
        foreach (int id in _ids.Values)
            yield return id;
    }

    private bool TryTakeId(out int id)
    {
        if (_freeCount > 0)
        {
            id = _free[--_freeCount];
            return true;
        }
        if (_next >= _limit)
        {
            id = -1;
            return false;
        }
        id = _next++;
        if (id >= _keys.Length)
        {
            int cap = Math.Min(_limit, Math.Max(_keys.Length * 2, id + 1));
            Array.Resize(ref _keys, cap);
            Array.Resize(ref _refs, cap);
        }
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Push(ref int[] stack, ref int count, int id)
    {
        if (count == stack.Length)
            Array.Resize(ref stack, stack.Length * 2);
        stack[count++] = id;
    }
}
