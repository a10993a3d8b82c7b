using System.Runtime.InteropServices;

namespace LinuxCp.Dataplane.Tables;

/// <summary>A growable list of unmanaged values in native memory: scratch for control-plane
/// sweeps over a full table (a managed list of a million keys would be a large-object
/// allocation, and those start gen2 collections). Reused across calls; not thread-safe.</summary>
public sealed unsafe class NativeList<T> : IDisposable where T : unmanaged
{
    private T* _items;
    private int _capacity;

    public int Count { get; private set; }

    public ref T this[int i] => ref _items[i];

    public void Add(in T item)
    {
        if (Count == _capacity)
        {
            int cap = Math.Max(64, _capacity * 2);
            _items = (T*)NativeMemory.Realloc(_items, (nuint)(cap * sizeof(T)));
            _capacity = cap;
        }
        _items[Count++] = item;
    }

    public void Clear() => Count = 0;

    public void Dispose()
    {
        NativeMemory.Free(_items);
        _items = null;
        _capacity = 0;
        Count = 0;
        GC.SuppressFinalize(this);
    }

    ~NativeList() => NativeMemory.Free(_items);
}
