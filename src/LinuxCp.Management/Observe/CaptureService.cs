using DpdkSharp;
using LinuxCp.Dataplane;
using LinuxCp.Dataplane.Observe;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Management.Observe;

/// <summary>One packet capture at a time: workers copy packets of the chosen port into their
/// rings (never waiting), a writer thread merges the rings in time order into a pcap file and
/// stops on its own after <c>max</c> packets.</summary>
public sealed class CaptureService : IDisposable
{
    public const int RingSlots = 2048;
    public const long DefaultMax = 10_000;

    private readonly DataplaneEngine _engine;
    private readonly object _lock = new();
    private Session? _current;
    private CaptureDto? _last;

    public CaptureService(DataplaneEngine engine) => _engine = engine;

    private sealed class Session
    {
        public required IReadOnlyList<CaptureRing> Rings;
        public required PcapWriter Writer;
        public required string File;
        public required string Port;
        public required string Direction;
        public required long Max;
        public required long StartTsc;
        public required long StartUnixNs;
        public required double NsPerTick;
        public Thread? Thread;
        public volatile bool StopRequested;
        public volatile bool Finished;
        public long Written;
        public long Discarded;
        public string? Error;
    }

    public CaptureDto Start(ushort port, string portName, bool rawIp, int directions, long max, string file)
    {
        lock (_lock)
        {
            if (_current is not null && !_current.Finished)
                throw new ApiException($"a capture is already running (port {_current.Port}, file {_current.File}); stop it first");
            FinishLocked();
            if (!Path.IsPathFullyQualified(file))
                throw new ApiException($"capture file '{file}' must be an absolute path");
            FileStream fs;
            try
            {
                fs = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
            {
                throw new ApiException($"cannot create capture file '{file}': {e.Message}");
            }
            var s = new Session
            {
                Rings = [],
                Writer = new PcapWriter(fs, rawIp ? PcapWriter.LinkTypeRaw : PcapWriter.LinkTypeEthernet),
                File = file,
                Port = portName,
                Direction = directions switch { 1 => "rx", 2 => "tx", _ => "both" },
                Max = max,
                StartTsc = (long)Eal.Rdtsc(),
                StartUnixNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100,
                NsPerTick = 1e9 / Eal.TscHz,
            };
            try
            {
                s.Rings = _engine.CaptureStart(port, directions, RingSlots);
            }
            catch (InvalidOperationException e)
            {
                s.Writer.Dispose();
                throw new ApiException(e.Message);
            }
            s.Thread = new Thread(() => WriterLoop(s)) { IsBackground = true, Name = "lcp-capture" };
            _current = s;
            s.Thread.Start();
            return Describe(s, running: true);
        }
    }

    public CaptureDto Stop()
    {
        lock (_lock)
        {
            if (_current is null)
                return _last ?? throw new ApiException("no capture is running");
            return FinishLocked()!;
        }
    }

    public CaptureDto Status()
    {
        lock (_lock)
        {
            if (_current is null)
                return _last ?? new CaptureDto(false, null, null, null, 0, 0, 0, null);
            return Describe(_current, running: !_current.Finished);
        }
    }

    private CaptureDto? FinishLocked()
    {
        Session? s = _current;
        if (s is null)
            return null;
        s.StopRequested = true;
        s.Thread!.Join();
        _current = null;
        _last = Describe(s, running: false);
        return _last;
    }

    private static CaptureDto Describe(Session s, bool running) =>
        new(running, s.File, s.Port, s.Direction, s.Max, Interlocked.Read(ref s.Written),
            s.Rings.Sum(r => r.Dropped) + Interlocked.Read(ref s.Discarded), s.Error);

    private void WriterLoop(Session s)
    {
        var batch = new List<(long Tsc, byte[] Data, uint Orig)>();
        bool stopped = false;
        bool detached = false; // the workers let go of the rings (their grace period passed)
        try
        {
            while (true)
            {
                bool last = s.StopRequested || Interlocked.Read(ref s.Written) >= s.Max;
                if (last && !stopped)
                {
                    detached = _engine.CaptureStop(); // from here on the rings only shrink
                    stopped = true;
                }
                DrainInto(s, batch);
                if (batch.Count != 0)
                {
                    batch.Sort((a, b) => a.Tsc.CompareTo(b.Tsc));
                    foreach (var (tsc, data, orig) in batch)
                    {
                        if (Interlocked.Read(ref s.Written) >= s.Max)
                        {
                            Interlocked.Increment(ref s.Discarded);
                            continue;
                        }
                        s.Writer.Write(s.StartUnixNs + (long)((tsc - s.StartTsc) * s.NsPerTick), data, orig);
                        Interlocked.Increment(ref s.Written);
                    }
                    batch.Clear();
                    s.Writer.Flush();
                }
                if (stopped)
                    break;
                Thread.Sleep(1);
            }
        }
        catch (IOException e)
        {
            s.Error = e.Message;
            if (!stopped)
                detached = _engine.CaptureStop();
        }
        finally
        {
            s.Writer.Dispose();
            if (detached)
            {
                foreach (CaptureRing r in s.Rings)
                    r.Dispose();
            }
            else
            {
                // A worker may still be writing into a ring: its memory is freed after a later
                // grace period, not now.
                s.Error ??= "a worker did not pass a quiescent point when the capture stopped; its rings are freed later";
                _engine.DisposeWhenQuiet(s.Rings);
            }
            s.Finished = true;
        }
    }

    private static unsafe void DrainInto(Session s, List<(long, byte[], uint)> batch)
    {
        foreach (CaptureRing r in s.Rings)
        {
            r.Drain(p =>
            {
                var slot = (CaptureSlot*)p;
                batch.Add((slot->Tsc, new ReadOnlySpan<byte>(slot->Data, slot->CapLen).ToArray(), slot->OrigLen));
            });
        }
    }

    public void Dispose()
    {
        lock (_lock)
            FinishLocked();
    }
}
