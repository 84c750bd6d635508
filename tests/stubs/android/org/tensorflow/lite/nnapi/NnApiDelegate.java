// Compile-only stub for tests: mirrors the public signature of org.tensorflow.lite.nnapi.NnApiDelegate, LiteRT 1.4 (com.google.ai.edge.litert:litert).
package org.tensorflow.lite.nnapi;

import org.tensorflow.lite.Delegate;

public class NnApiDelegate implements Delegate {
    public NnApiDelegate() {}
    public long getNativeHandle() { return 0; }
    public void close() {}
}
