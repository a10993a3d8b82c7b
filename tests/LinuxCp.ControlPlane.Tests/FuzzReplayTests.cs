using LinuxCp.Fuzz;
using LinuxCp.TestSupport;

namespace LinuxCp.ControlPlane.Tests;

/// <summary>Every fuzz target over its seed corpus (tests/fuzz/corpus, real frames and kernel
/// dumps) and over every crash a fuzzing run kept (tests/fuzz/crashes): no input may escape as an
/// exception or break a target's invariant. AFL itself runs in perf/scripts/fuzz.sh.</summary>
public sealed class FuzzReplayTests
{
    public static TheoryData<string> Names() => [.. Targets.Names];

    [Theory]
    [MemberData(nameof(Names))]
    public void CorpusAndKeptCrashes_Replay_NoFailure(string target)
    {
        string corpus = Path.Combine(Repo.Root, "tests", "fuzz", "corpus", target);
        Assert.True(Directory.EnumerateFiles(corpus).Count() >= 4, $"seed corpus of {target} is missing (tests/fuzz/mkcorpus.py)");
        List<string> failures = Targets.Replay(target, corpus);
        failures.AddRange(Targets.Replay(target, Path.Combine(Repo.Root, "tests", "fuzz", "crashes", target)));
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void FrameOracle_OnePassAndFullChecks_AgreeOnAPlainFrame()
    {
        // 00:01:02:03:04:01 <- 02:..., IPv4, IHL 5, total length 46, TTL 64, UDP, 10.254.0.1 -> 10.253.0.1
        byte[] f = new byte[61];
        f[0] = 1; // the port's MAC is the frame's destination
        byte[] eth = [0x00, 0x01, 0x02, 0x03, 0x04, 0x01, 0x02, 0, 0, 0, 0, 0xa0, 0x08, 0x00];
        eth.CopyTo(f, 1);
        byte[] ip = [0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 10, 254, 0, 1, 10, 253, 0, 1];
        ip.CopyTo(f, 15);
        Targets.Run("frame", f);       // agrees (or throws)
        f[15 + 8] = 1;                  // TTL 1: both must punt
        Targets.Run("frame", f);
        Assert.Throws<ArgumentException>(() => Targets.Run("nope", f));
    }
}
