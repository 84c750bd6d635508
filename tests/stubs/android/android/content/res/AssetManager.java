// Compile-only stub for tests: mirrors the public signature of android.content.res.AssetManager, Android API level 36.
package android.content.res;

import java.io.IOException;
import java.io.InputStream;

public final class AssetManager implements AutoCloseable {
    public final InputStream open(String fileName) throws IOException { throw new UnsupportedOperationException("stub"); }
    public final AssetFileDescriptor openFd(String fileName) throws IOException { throw new UnsupportedOperationException("stub"); }
    public void close() {}
}
