"""HTTP wrappers around the plain functions in legacy.ai."""
import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from articles.models import Article
from legacy import ai

MAX_SUMMARY_SENTENCES = 10
RELATED_COUNT = 5


# A machine-to-machine JSON API with no session state to protect, so CSRF
# tokens would only get in the way of its clients.
@csrf_exempt
@require_POST
def summarize(request):
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "invalid JSON"}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"error": "expected a JSON object"}, status=400)

    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        return JsonResponse({"error": "missing fields", "fields": ["text"]}, status=400)

    max_sentences = payload.get("max_sentences", 3)
    # bool is an int subclass; "true" is not a sentence count.
    if (
        not isinstance(max_sentences, int)
        or isinstance(max_sentences, bool)
        or not 1 <= max_sentences <= MAX_SUMMARY_SENTENCES
    ):
        return JsonResponse(
            {"error": f"max_sentences must be an integer between 1 and {MAX_SUMMARY_SENTENCES}"},
            status=400,
        )

    sentences = ai.summarize_sentences(text, max_sentences)
    return JsonResponse(
        {"summary": " ".join(sentences), "keywords": ai.keywords(text), "sentences": len(sentences)}
    )


@require_GET
def related(request, pk):
    article = Article.objects.filter(pk=pk).values("title", "body").first()
    if article is None:
        return JsonResponse({"error": "not found"}, status=404)

    others = Article.objects.exclude(pk=pk).order_by("id").values_list("id", "title", "slug", "body")
    info = {}
    candidates = []
    for other_id, title, slug, body in others.iterator():
        info[other_id] = (title, slug)
        candidates.append((other_id, f"{title}\n{body}"))

    ranked = ai.related_articles(f"{article['title']}\n{article['body']}", candidates, RELATED_COUNT)
    return JsonResponse(
        {
            "article": pk,
            "related": [
                {"id": other_id, "title": info[other_id][0], "slug": info[other_id][1], "score": round(score, 4)}
                for other_id, score in ranked
            ],
        }
    )
