"""Articles, tags and reader comments: the HTML pages and the JSON API."""
