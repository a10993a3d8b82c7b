using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;

namespace LinuxCp.Config.Engine;

/// <summary>Netlink listeners in every namespace that holds managed items: any link, address,
/// neighbour or route change there (or a lost message) marks the namespace dirty, and the
/// engine's housekeeping reads its managed items back.</summary>
public sealed class DriftWatchers : IDisposable
{
    private readonly object _lock = new();
    private readonly Dictionary<string, Watch> _watches = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);

    public int Count
    {
        get
        {
            lock (_lock)
                return _watches.Count;
        }
    }

    internal void Track(ConfigEngine engine)
    {
        HashSet<string> want = engine.ManagedNamespaces();
        lock (_lock)
        {
            foreach (string ns in _watches.Keys.Where(k => !want.Contains(k)).ToList())
            {
                _watches[ns].Dispose();
                _watches.Remove(ns);
            }
            foreach (string ns in want.Where(k => !_watches.ContainsKey(k)))
            {
                try
                {
                    _watches[ns] = new Watch(ns, this);
                }
                catch (DpdkException)
                {
                    // The namespace went away meanwhile; the next transaction tracks again.
                }
            }
        }
    }

    private void MarkDirty(string ns)
    {
        lock (_lock)
            _dirty.Add(ns);
    }

    /// <summary>The namespaces changed since the last call (quiet for 200 ms, so a burst of
    /// changes is read back once).</summary>
    public HashSet<string> TakeDirty()
    {
        lock (_lock)
        {
            var quiet = _dirty.Where(ns => !_watches.TryGetValue(ns, out Watch? w) || Environment.TickCount64 - w.LastEvent >= 200).ToHashSet(StringComparer.Ordinal);
            _dirty.ExceptWith(quiet);
            return quiet;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (Watch w in _watches.Values)
                w.Dispose();
            _watches.Clear();
        }
    }

    private sealed class Watch : IDisposable
    {
        private readonly NetlinkSocket _sock;
        private readonly Thread _thread;
        private volatile bool _stop;

        public long LastEvent;

        public Watch(string ns, DriftWatchers owner)
        {
            _sock = new NetlinkSocket(ns.Length == 0 ? null : ns, Nl.GrpLink | Nl.GrpIp4Addr | Nl.GrpIp6Addr | Nl.GrpIp4Route | Nl.GrpIp6Route | Nl.GrpNeigh, 1 << 20);
            _thread = new Thread(() =>
            {
                var buf = new byte[64 << 10];
                while (!_stop)
                {
                    int n = _sock.Receive(buf, 1000);
                    if (_stop)
                        break;
                    if (n > 0 && OnlyOwn(buf.AsSpan(0, n)))
                        continue; // the kernel telling about lcpd's own changes
                    if (n > 0 || n == -105)
                    {
                        Interlocked.Exchange(ref LastEvent, Environment.TickCount64);
                        owner.MarkDirty(ns);
                    }
                    else if (n is not (-11 or -4))
                    {
                        owner.MarkDirty(ns); // the socket failed: read the namespace back
                        break;
                    }
                }
            })
            { IsBackground = true, Name = "lcpd-config-watch" };
            _thread.Start();
        }

        /// <summary>Are all the messages of a datagram notifications of lcpd's own requests?</summary>
        private static bool OnlyOwn(ReadOnlySpan<byte> b)
        {
            while (b.Length >= Nl.HeaderSize)
            {
                uint len = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b);
                uint seq = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
                if (len < Nl.HeaderSize || !Linux.NetlinkLinux.IsOwnSeq(seq))
                    return false;
                int aligned = (int)((len + 3) & ~3u);
                if (aligned >= b.Length)
                    break;
                b = b[aligned..];
            }
            return true;
        }

        public void Dispose()
        {
            _stop = true;
            _sock.Wake();
            _thread.Join(2000);
            _sock.Dispose();
        }
    }
}
