using System.Runtime.InteropServices;

namespace LinuxCp.Dataplane.Fib;

public sealed unsafe partial class FibWriter
{
    /// <summary>The writes a commit made to one copy, for the other: append-only between
    /// levellings, in native chunks that never move. Native, so that a start-up load's log (a
    /// million writes and more) is never a large-object allocation, each of which would start a
    /// gen2 collection; never moving, so that the shadow helper reads a range while the writer
    /// appends after it.</summary>
    private sealed class OpLog : IDisposable
    {
        private const int ChunkShift = 16;
        private const int ChunkMask = (1 << ChunkShift) - 1;
        // Grown by copying: a reader holding the old array still finds the same chunks in it.
        private nint[] _chunks = new nint[64];
        private int _allocated;

        public int Count { get; private set; }

        public void Add(in Op op)
        {
            int c = Count >> ChunkShift;
            if (c == _allocated)
            {
                if (c == _chunks.Length)
                {
                    var bigger = new nint[_chunks.Length * 2];
                    _chunks.CopyTo(bigger, 0);
                    _chunks = bigger;
                }
                _chunks[c] = (nint)NativeMemory.Alloc((nuint)(sizeof(Op) << ChunkShift));
                _allocated++;
            }
            ((Op*)_chunks[c])[Count & ChunkMask] = op;
            Count++;
        }

        public ref Op this[int i] => ref ((Op*)_chunks[i >> ChunkShift])[i & ChunkMask];

        /// <summary>Empties the log (nobody may be reading it); a big load's extra chunks go back.</summary>
        public void Clear()
        {
            Count = 0;
            for (; _allocated > 1; _allocated--)
            {
                NativeMemory.Free((void*)_chunks[_allocated - 1]);
                _chunks[_allocated - 1] = 0;
            }
        }

        public void Dispose()
        {
            Clear();
            if (_allocated == 1)
                NativeMemory.Free((void*)_chunks[0]);
            _allocated = 0;
        }
    }
}
