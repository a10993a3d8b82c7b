namespace DpdkSharp;

/// <summary>A DPDK call failed. <see cref="Errno"/> is the positive errno value.</summary>
public sealed class DpdkException : Exception
{
    public int Errno { get; }

    public DpdkException(string message, int errno) : base(message) => Errno = errno;

    public DpdkException(string message) : base(message) { }

    public DpdkException() { }

    public DpdkException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Throws for a negative return code (DPDK's -errno convention).</summary>
    public static int Check(int rc, string what)
    {
        if (rc < 0)
            throw new DpdkException($"{what}: {Eal.StrError(-rc)}", -rc);
        return rc;
    }
}
