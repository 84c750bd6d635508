// Compile-only stub for tests: mirrors the public signature of androidx.activity.result.ActivityResultCallback, androidx.activity 1.9.
package androidx.activity.result;

public interface ActivityResultCallback<O> {
    void onActivityResult(O result);
}
