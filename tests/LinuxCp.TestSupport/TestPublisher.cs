using LinuxCp.Dataplane.Fib;

namespace LinuxCp.TestSupport;

/// <summary>The FIB writer's view of the workers, for unit tests: records what is published and
/// answers grace periods as told (<see cref="GraceCompletes"/>), so a worker that misses its
/// quiescent point can be simulated.</summary>
public sealed class TestPublisher : IFibPublisher
{
    public List<FibSnapshot> Published { get; } = [];
    public FibSnapshot Current => Published.Count == 0 ? FibSnapshot.None : Published[^1];
    public bool GraceCompletes { get; set; } = true;
    public int GraceWaits { get; private set; }
    public Dictionary<ushort, ulong> Peers { get; } = [];

    public void Publish(FibSnapshot snapshot) => Published.Add(snapshot);

    public bool WaitGracePeriod(TimeSpan timeout)
    {
        GraceWaits++;
        return GraceCompletes;
    }

    public ulong PeerMac(ushort port) => Peers.GetValueOrDefault(port);

    /// <summary>What the workers learned on point-to-point ports (tests fill it).</summary>
    public List<LinuxCp.Dataplane.Tables.LearnedNeighbor> Learned { get; } = [];

    public void LearnedNeighbors(List<LinuxCp.Dataplane.Tables.LearnedNeighbor> into) => into.AddRange(Learned);
}
