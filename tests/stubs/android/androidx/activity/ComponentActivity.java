// Compile-only stub for tests: mirrors the public signature of androidx.activity.ComponentActivity, androidx.activity 1.9.
package androidx.activity;

import androidx.activity.result.ActivityResultCallback;
import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContract;

public class ComponentActivity extends android.app.Activity implements androidx.lifecycle.LifecycleOwner {
    public final <I, O> ActivityResultLauncher<I> registerForActivityResult(ActivityResultContract<I, O> contract,
                                                                             ActivityResultCallback<O> callback) {
        throw new UnsupportedOperationException("stub");
    }
}
