using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LinuxCp.Dataplane.Tables;

/// <summary>A hash map of unmanaged keys and values in native memory (open addressing, linear
/// probing, backward-shift deletion, power-of-two capacity, at most 3/4 full). For the control
/// plane's big tables — a full routing table's prefixes — so that neither their entries nor
/// their growth ever involve the garbage collector: a managed dictionary of a million entries
/// lives on the large-object heap, and each time it grows, the new array counts against the
/// large-object budget and starts a gen2 collection, which stops the managed lcores. Not
/// thread-safe (one writer, under the caller's lock).</summary>
public sealed unsafe class NativeMap<TKey, TValue> : IDisposable
    where TKey : unmanaged, IEquatable<TKey>
    where TValue : unmanaged
{
    private struct Slot
    {
        public TKey Key;
        public TValue Value;
        public bool Used;
    }

    private Slot* _slots;
    private nuint _mapped;
    private int _mask;
    private int _count;

    public NativeMap(int capacity = 16)
    {
        int cap = 16;
        while (cap * 3 / 4 < capacity)
            cap <<= 1;
        Allocate(cap);
    }

    public int Count => _count;

    /// <summary>Native bytes held by the table.</summary>
    public long Bytes => (long)(_mask + 1) * sizeof(Slot);

    // A full routing table's map is 100+ MiB read at random: on huge pages (HugeMemory) the
    // route ingest runs ~1.5x faster than with 4 KiB pages (perf/scripts/replay.sh).
    private void Allocate(int cap)
    {
        _slots = (Slot*)HugeMemory.AllocZeroed((nuint)cap * (nuint)sizeof(Slot), out _mapped);
        _mask = cap - 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Home(in TKey key)
    {
        uint h = (uint)key.GetHashCode() * 0x9E3779B1u; // spread weak hashes over the table
        return (int)(h ^ (h >> 15)) & _mask;
    }

    private int Find(in TKey key)
    {
        ObjectDisposedException.ThrowIf(_slots == null, this);
        for (int i = Home(key); ; i = (i + 1) & _mask)
        {
            Slot* s = _slots + i;
            if (!s->Used)
                return ~i;
            if (s->Key.Equals(key))
                return i;
        }
    }

    public bool ContainsKey(TKey key) => Find(key) >= 0;

    public bool TryGetValue(TKey key, out TValue value)
    {
        int i = Find(key);
        value = i >= 0 ? _slots[i].Value : default;
        return i >= 0;
    }

    /// <summary>A reference to the value, or a null reference when absent. Valid until the next add or remove.</summary>
    public ref TValue GetValueRefOrNullRef(TKey key)
    {
        int i = Find(key);
        if (i < 0)
            return ref Unsafe.NullRef<TValue>();
        return ref _slots[i].Value;
    }

    /// <summary>A reference to the value, added as default when absent. Valid until the next add or remove.</summary>
    public ref TValue GetValueRefOrAddDefault(TKey key, out bool exists)
    {
        int i = Find(key);
        exists = i >= 0;
        if (exists)
            return ref _slots[i].Value;
        if ((_count + 1) > (_mask + 1) * 3 / 4)
        {
            Grow();
            i = Find(key);
        }
        Slot* s = _slots + ~i;
        s->Key = key;
        s->Value = default;
        s->Used = true;
        _count++;
        return ref s->Value;
    }

    public TValue this[TKey key]
    {
        get => TryGetValue(key, out TValue v) ? v : throw new KeyNotFoundException();
        set => GetValueRefOrAddDefault(key, out _) = value;
    }

    public bool Remove(TKey key)
    {
        int i = Find(key);
        if (i < 0)
            return false;
        // Backward shift: pull later entries of the probe run into the hole, so lookups never
        // need tombstones.
        int hole = i;
        for (int j = (hole + 1) & _mask; _slots[j].Used; j = (j + 1) & _mask)
        {
            int home = Home(_slots[j].Key);
            // Move j into the hole unless its home lies cyclically in (hole, j].
            bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
            if (stays)
                continue;
            _slots[hole] = _slots[j];
            hole = j;
        }
        _slots[hole] = default;
        _count--;
        return true;
    }

    private void Grow() => Rehash((_mask + 1) * 2);

    private void Rehash(int cap)
    {
        Slot* old = _slots;
        nuint oldMapped = _mapped;
        int oldCap = _mask + 1;
        Allocate(cap);
        for (int i = 0; i < oldCap; i++)
        {
            if (!old[i].Used)
                continue;
            int j = ~Find(old[i].Key);
            _slots[j] = old[i];
        }
        HugeMemory.Free(old, oldMapped);
    }

    /// <summary>Walks every entry without allocating (no adds or removes meanwhile; the value
    /// may be changed through <see cref="Enumerator.Value"/>).</summary>
    public Enumerator GetEnumerator() => new(this);

    public ref struct Enumerator
    {
        private readonly NativeMap<TKey, TValue> _map;
        private int _i;

        internal Enumerator(NativeMap<TKey, TValue> map)
        {
            _map = map;
            _i = -1;
        }

        public bool MoveNext()
        {
            ObjectDisposedException.ThrowIf(_map._slots == null, _map);
            while (++_i <= _map._mask)
                if (_map._slots[_i].Used)
                    return true;
            return false;
        }

        public readonly KeyValuePair<TKey, TValue> Current => new(_map._slots[_i].Key, _map._slots[_i].Value);

        public readonly TKey Key => _map._slots[_i].Key;

        public readonly ref TValue Value => ref _map._slots[_i].Value;
    }

    /// <summary>Every entry (a copy; for show commands, not for a full table).</summary>
    public List<KeyValuePair<TKey, TValue>> ToList()
    {
        var list = new List<KeyValuePair<TKey, TValue>>(_count);
        for (int i = 0; i <= _mask; i++)
            if (_slots[i].Used)
                list.Add(new KeyValuePair<TKey, TValue>(_slots[i].Key, _slots[i].Value));
        return list;
    }

    public void Dispose()
    {
        if (_slots != null)
        {
            HugeMemory.Free(_slots, _mapped);
            _slots = null;
        }
        GC.SuppressFinalize(this);
    }

    ~NativeMap()
    {
        if (_slots != null)
            HugeMemory.Free(_slots, _mapped);
    }
}
