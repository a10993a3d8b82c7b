using System.Collections.Concurrent;

namespace LinuxCp.Dataplane.Fib;

// A large load written into both copies at once: while no worker reads the FIB yet (start-up,
// before the workers are launched), the copy a staged load does not write is not in use either,
// so a helper thread can replay each staged batch into it while the loader parses the next one.
// The load's end then publishes without first writing the whole load a second time.
public sealed unsafe partial class FibWriter
{
    private ShadowFill? _shadow;

    /// <summary>Until <see cref="EndShadowLoads"/>: every staged batch (<see cref="Stage"/>) is
    /// also written into the other copy by a helper thread, concurrently with the caller. Only
    /// while no worker reads either copy: the caller promises the workers are not running yet.
    /// <paramref name="onHelperStart"/> runs first on the helper (to place it on an idle CPU).</summary>
    public void BeginShadowLoads(Action? onHelperStart = null)
    {
        if (_shadow is null)
            _shadow = new ShadowFill(this, onHelperStart);
    }

    /// <summary>Waits for the helper's last batch and stops it; call before any worker runs.
    /// Writes it made are accounted as if the writer had made them.</summary>
    public void EndShadowLoads()
    {
        if (_shadow is not ShadowFill s)
            return;
        s.WaitIdle();
        _shadow = null;
        s.Dispose();
        FibErrors += s.TakeErrors();
    }

    /// <summary>Ops the helper has already written into <paramref name="copy"/>: a replay into
    /// that copy starts after them.</summary>
    private int ShadowDone(int copy)
    {
        if (_shadow is not ShadowFill s || s.Done == 0)
            return 0;
        s.WaitIdle();
        FibErrors += s.TakeErrors();
        int done = s.Copy == copy ? s.Done : 0;
        s.Done = 0; // the replay that asked levels the copy; the op log starts over
        return done;
    }

    /// <summary>Hands the ops staged since the last hand-off to the helper, for the copy that is
    /// not being staged into.</summary>
    private void ShadowHandOff()
    {
        if (_shadow is not ShadowFill s || s.Done == _ops.Count)
            return;
        if (s.Done != 0 && s.Copy != _active)
            s.WaitIdle(); // (cannot happen: the log is emptied whenever the copies swap)
        s.Copy = _active;
        s.Post(_ops, s.Done, _ops.Count, _active);
        s.Done = _ops.Count;
    }

    /// <summary>Before anything reads a copy the helper may be writing (verify, tool lookups).</summary>
    private void ShadowQuiesce() => _shadow?.WaitIdle();

    private void ReplayRange(OpLog ops, int from, int to, int copy, ref long errors)
    {
        for (int i = from; i < to; i++)
        {
            ref Op op = ref ops[i];
            TableSlot? t = _tables[op.Key.Table];
            if (t is null)
                continue;
            nint fib = op.Key.V6 ? t.V6[copy] : t.V4[copy];
            int rc = op.Action == OpAction.Add ? _backend.Add(fib, op.Key, (ushort)op.Group) : _backend.Delete(fib, op.Key);
            if (rc < 0 && rc != -2)
                errors++; // the copies differ now: lcp verify reports it
        }
    }

    /// <summary>The helper: replays posted op ranges in order. The log below a posted range's end
    /// is not written again until the copies are levelled, which waits for the helper, and its
    /// chunks never move, so the helper reads it without a lock.</summary>
    private sealed class ShadowFill : IDisposable
    {
        private readonly FibWriter _w;
        private readonly BlockingCollection<(OpLog Ops, int From, int To, int Copy)> _work = new();
        private readonly Thread _thread;
        private readonly object _gate = new();
        private int _pending; // posted ranges not yet written (under _gate)
        private long _errors;

        public int Copy;  // the copy the posted ranges go to
        public int Done;  // ops [0, Done) of the log are posted

        public ShadowFill(FibWriter w, Action? onStart)
        {
            _w = w;
            _thread = new Thread(() => Run(onStart)) { IsBackground = true, Name = "fib-shadow" };
            _thread.Start();
        }

        public void Post(OpLog ops, int from, int to, int copy)
        {
            lock (_gate)
                _pending++;
            _work.Add((ops, from, to, copy));
        }

        public void WaitIdle()
        {
            lock (_gate)
            {
                while (_pending != 0)
                    Monitor.Wait(_gate);
            }
        }

        public long TakeErrors() => Interlocked.Exchange(ref _errors, 0);

        private void Run(Action? onStart)
        {
            onStart?.Invoke();
            foreach (var (ops, from, to, copy) in _work.GetConsumingEnumerable())
            {
                long errors = 0;
                _w.ReplayRange(ops, from, to, copy, ref errors);
                Interlocked.Add(ref _errors, errors);
                lock (_gate)
                {
                    if (--_pending == 0)
                        Monitor.PulseAll(_gate);
                }
            }
        }

        public void Dispose()
        {
            _work.CompleteAdding();
            _thread.Join();
            _work.Dispose();
        }
    }
}
